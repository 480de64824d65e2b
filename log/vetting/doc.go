// Package vetting holds the wire formats of the vetting log: the statement a
// vetting agent (VA) signs for one KYC/KYB digest, the leaf the log stores for
// it, and the registry of agent keys. It imports no server code, so verifiers
// (receipts/vesper, client, the vesper command) can decode and check leaves.
//
// # Statement
//
// A VA submits one compact JWS per digest (draft-wendt-stir-vesper §5: "The VA
// logs the hash of the KYC/KYB data with a transparency service"). Its bytes are
// canonical, so that a leaf can rebuild them exactly:
//
//	protected header: {"alg":"ES256","kid":"<thumbprint>","typ":"vesper-kyc-digest+jwt"}
//	payload:          {"kyc_data_hash":"<b64url>","hash_alg":"sha-256","sub":"<sub>","iat":<int>}
//
// alg is ES256 or EdDSA (Ed25519); kid is the RFC 7638 SHA-256 thumbprint of
// the agent's public JWK, base64url without padding; the "sub" member is left
// out when there is no subject. kyc_data_hash is the 32-byte SHA-256 digest,
// base64url without padding. iat is in seconds. A subject is 1 to 255 bytes of
// printable ASCII other than '"' and '\', so its JSON form needs no escapes.
// The typ header separates this signature's domain from every other JWS the
// agent makes (tokens, receipts).
//
// # Leaf, version 1
//
// All integers are big-endian; the encoding is deterministic, every field has
// one valid form, and a decoder accepts nothing else (no trailing bytes).
//
//	offset size  field
//	0      1     version, 0x01
//	1      8     log timestamp, milliseconds since the Unix epoch
//	9      1     signature algorithm: 0x01 ES256, 0x02 EdDSA (Ed25519)
//	10     32    agent key: RFC 7638 SHA-256 thumbprint of the agent's JWK
//	42     1     digest algorithm: 0x01 SHA-256
//	43     32    kyc_data_hash
//	75     8     iat of the statement, seconds since the Unix epoch
//	83     1     subject length n (0 = no subject)
//	84     n     subject
//	84+n   64    the agent's JWS signature (ES256: R||S; EdDSA: the Ed25519 signature)
//
// A leaf therefore holds the whole statement: Leaf.Statement rebuilds the
// compact JWS the agent signed, and Leaf.Verify checks it against the agent's
// key, so every leaf verifies on its own, whether it came in a batch or not.
// No personal data enters the log: only digests. Agents should log salted
// commitments (see the vesper kyc-hash command), never bare hashes of
// guessable data.
//
// Golden vectors for both formats are in testdata/ (leaf-v1.json), checked by
// TestGoldenLeaves; FuzzParseLeaf, FuzzParseStatement and FuzzParseAgents
// fuzz the decoders.
package vetting
