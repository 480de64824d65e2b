// Package stict holds the STI certificate transparency log's formats and
// checks (draft-ietf-stir-certificate-transparency over RFC 6962 and
// C2SP static-ct-api), which verifiers import too: the TNAuthList
// extension of STI certificates (RFC 8226), parsed strictly; the
// validation of submitted chains against the log's STI roots
// (ValidateChain); the log's entries and data-tile leaves (NewEntry,
// ParseTileLeaf); and its RFC 6962 signer and checkpoint verifier (Signer,
// NewVerifier). The log's server is log/stict/server.
//
// TestTNAuthList quotes RFC 8226's structure in its table, and the Fuzz
// tests fuzz each parser; TestValidateChain runs every refusal against a
// test PKI that stitest generates afresh (testdata/sti-pki at the
// repository root is a copy for people and other tools, written by
// TestWritePKI with -write-pki); TestGoldenTileLeaf keeps
// testdata/tile-leaf-v1.json decoding.
package stict
