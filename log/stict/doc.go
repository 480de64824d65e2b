// Package stict holds the STI certificate transparency log's formats and
// checks (draft-ietf-stir-certificate-transparency over RFC 6962 and
// C2SP static-ct-api), which verifiers import too: the TNAuthList
// extension of STI certificates (RFC 8226), parsed strictly; the
// validation of submitted chains against the log's STI roots
// (ValidateChain); the log's entries and data-tile leaves (NewEntry,
// ParseTileLeaf); and its RFC 6962 signer and checkpoint verifier (Signer,
// NewVerifier). The log's server is log/stict/server.
//
// For PASSporT verification services (receipts/passport) it also holds
// the verifier's side of a certificate's STI-CT evidence: sct.go parses
// the embedded SCT list strictly (ParseSCTList, EmbeddedSCTs), rebuilds
// what an SCT signs from the final certificate (PrecertLeaf, which is
// also the log's MerkleTreeLeaf) and verifies the SCTs of the logs a
// verifier trusts (VerifyEmbeddedSCTs, CTLog from a pinned vkey);
// metadata.go is the log's CT log list v3 entry (LogMetadata). The JWT
// claim constraints of RFC 8226 and RFC 9118 (constraints.go:
// ParseJWTClaimConstraints, ParseEnhancedJWTClaimConstraints,
// CertificateConstraints) are parsed here too, and ValidateChain checks
// them.
//
// TestTNAuthList quotes RFC 8226's structure in its table, and the Fuzz
// tests fuzz each parser; TestValidateChain runs every refusal against a
// test PKI that stitest generates afresh (testdata/sti-pki at the
// repository root is a copy for people and other tools, written by
// TestWritePKI with -write-pki); TestGoldenTileLeaf keeps
// testdata/tile-leaf-v1.json decoding; TestGoldenSCTList keeps
// testdata/sct-list-v1.json parsing; TestVerifyEmbeddedSCTs and
// TestSCTListInterop check SCTs both ways against
// certificate-transparency-go.
package stict
