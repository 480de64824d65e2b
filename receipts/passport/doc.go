// Package passport is the called party's verification service library for
// PASSporTs (RFC 8225) in SIP Identity headers (RFC 8224), with the SHAKEN
// (RFC 8588), rcd (RFC 9795) and connected-identity rsp
// (draft-ietf-stir-rfc4916-update) extensions, checked down to the STI-CT
// log (draft-ietf-stir-certificate-transparency): the signature by the
// x5c leaf, freshness, the certificate chain to pinned STI roots, the
// TNAuthList's authorization of the number (RFC 8226 §9), the JWT claim
// constraints (RFC 8226 §8, RFC 9118) with the vesperlog profile of the
// privacy modes of draft-wendt-stir-vesper-06 §5 (privacy.go), the
// certificate's embedded SCTs from trusted STI-CT logs (RFC 6962 §3.3),
// and, optionally and off the call path, their inclusion in those logs.
//
// Call pattern:
//
//	trust, err := passport.TrustFromConfiguration(cfg) // a pinned receipts.Configuration with sti set
//	res, err := passport.Verify(ctx, token, passport.Options{Trust: trust})
//	// on failure passport.Check(err) names the failed check; res.Checks lists the passed ones
//
// It follows RFC 8225 for the token (full form only: a compact-form token
// is refused, as it needs the SIP request), its §9 deterministic JSON for
// what Sign writes (a verifier reports, but does not refuse, other key
// orders), and RFC 8224 §4.1 (with errata 6499) for the Identity header.
// It imports no server code (receipts/deps_test.go).
//
// Tests that prove it: TestVerify and TestVerifyRejects run delegate
// certificates whose SCTs the STI-CT log's own signer issued, one row per
// accepted case and per failed check (asserting its sentinel and Check
// name); TestGolden keeps testdata/passports.json (a SHAKEN and an rsp
// PASSporT) verifying, and Sign writing their header and payload byte for
// byte; TestPrivacyGolden keeps testdata/privacy-modes.json, cross-checked
// with stitest's own encoder; TestParse and TestCanonicalJSON quote
// RFC 8225's cases; TestSignCanonical checks Sign's §9 form; interop_test.go
// signs and verifies with npm jose; FuzzParse, FuzzParseIdentityHeader and
// FuzzVerify fuzz the inputs.
package passport
