// Package receipts issues and verifies vesperlog receipts: offline proof
// that a log holds an entry, signed by the log operator's receipt key.
//
// A receipt is a compact JWS (RFC 7515):
//
//	header:  {"alg":"ES256","kid":"<RFC 7638 thumbprint>","typ":"tlog-receipt+jwt"}
//	payload: {"iat": <seconds>,
//	          "origin": "<log origin>",
//	          "index": <entry index>,
//	          "entry": "<the entry's bytes, base64url>",
//	          "tlog_proof": "<a C2SP tlog-proof@v1>"}
//
// The tlog-proof (tlogproof.go, https://c2sp.org/tlog-proof) carries the
// inclusion proof and the checkpoint, with its witness cosignatures,
// verbatim. Its optional extra line is not used. The receipt keys are
// published at /.well-known/jwks.json and in the transparency
// configuration (trust.go), which a verifier pins.
//
// Receipt keys rotate. A KeySet (keys.go) keeps every key that ever signed,
// each with its validity window as the JWK members "nbf" and "exp"
// (NumericDate seconds, as in OpenID Federation's historical keys); a key
// with "exp" is retired. Verify accepts a receipt only if its iat lies in
// its key's window, so a retired key's receipts keep verifying and it can
// sign no new one. A key without a window (from a history older than
// windows) verifies a receipt of any iat.
//
// Verify checks everything that can be checked offline: the JWS and its
// key's window, the checkpoint's log signature and witness quorum (C2SP tlog-policy, package
// witness/policy), and the inclusion of the entry's RFC 6962 leaf hash. The
// JWS signature alone proves little, since the operator holds both keys;
// the checkpoint and the cosignatures are what bind the operator to one
// public history.
//
// Golden vectors: testdata/receipt-v1.json (TestGoldenReceipt); a rotated
// key history, testdata/jwks-windows.json (TestKeySetGolden); the C2SP
// example proof (TestParseProofSpecExample). FuzzParseProof and FuzzVerify
// fuzz the parsers. This package imports no server code; TestDependencies
// proves it.
package receipts
