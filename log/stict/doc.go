// Package stict holds the STI certificate transparency log's formats and
// checks (draft-ietf-stir-certificate-transparency over RFC 6962 and
// C2SP static-ct-api): the TNAuthList extension of STI certificates
// (RFC 8226), parsed strictly, and the validation of submitted chains
// against the log's STI trust anchors.
//
// TestTNAuthList quotes RFC 8226's structure in its table, and
// FuzzParseTNAuthList fuzzes the parser; TestValidateChain runs every
// refusal against the generated test PKI (testdata/sti-pki).
package stict
