// Package server is the STI-CT log's API (draft-ietf-stir-certificate-
// transparency): the RFC 6962 write endpoints add-chain and add-pre-chain
// with SCTs issued once the entry is published, carrying static-ct-api's
// leaf_index extension; the RFC 6962 read endpoints computed from the
// tiles (get-sth, get-sth-consistency, get-proof-by-hash, get-entries,
// get-roots); receipts for entries by index or leaf hash; and the issuer/
// certificates that data tiles name by fingerprint; and log.v3.json, the
// log's CT log list v3 entry.
//
// The HTTP layer decodes, calls Service and encodes; every refusal is an
// RFC 9457 problem and changes nothing.
package server
