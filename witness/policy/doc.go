// Package policy parses and evaluates C2SP tlog-policy files
// (https://c2sp.org/tlog-policy): which logs are trusted, which witnesses
// exist, and the quorum of witness cosignatures a checkpoint needs. Offline
// verifiers and servers both use it, so it imports only the standard
// library, golang.org/x/mod/sumdb/note and
// github.com/transparency-dev/formats/note.
//
// Parse is strict: it enforces every rule of the spec (character set,
// space/tab whitespace, comments, exactly one quorum line, definitions
// before use, "none" only as the quorum, thresholds 1 <= k <= n, each
// member once per group, no duplicate keys, one namespace for witnesses
// and groups) and refuses anything else with an error giving the line.
// Logs use note keys whose key name is the log's checkpoint origin:
// Ed25519 (type 0x01), RFC 6962 (0x05, an STI-CT log's) or ML-DSA-44, and
// a log may have one key of each type (an STI-CT log is listed with its
// RFC 6962 key and the Ed25519 key it also signs with for C2SP witnesses;
// a checkpoint signed by any of them is the log's). ForLog builds the
// policy of a log's vkeys alone, with quorum none, for a verifier given
// just -log-vkey; witnesses use Ed25519 cosignature/v1 keys (type 0x04) or
// ML-DSA-44 cosignature keys (type 0x06, exactly 1312 key bytes), both of
// https://c2sp.org/tlog-cosignature, mixed in any group or quorum.
// Beyond the spec, Parse also refuses: a final line without a
// newline, thresholds with leading zeroes, vkeys whose key ID is not the
// lowercase hex of the one computed from the key or whose base64 is not
// canonical, an ML-DSA-44 key name over 255 bytes (the signed message
// cannot hold it), two log keys of one type for one origin, the same public key used by a
// log and a witness, and two keys with the same key name and key ID. Comments are whole lines only; a '#'
// after a field is part of the text. The limits (MaxPolicySize, MaxLines,
// MaxLogs, MaxWitnesses, MaxGroups) are eight times the spec's
// recommended minimums.
//
// Policy.Verify checks a signed checkpoint (https://c2sp.org/tlog-checkpoint,
// https://c2sp.org/signed-note): the body strictly (no leading zeroes in
// the size, a canonical 32-byte base64 hash, non-empty extension lines),
// the log's signature, every cosignature by a policy witness (timestamp
// at most 2^63-1; an ML-DSA-44 one signs the subtree [0, size), without
// extension lines, and never verifies for an origin over 255 bytes), and
// the quorum over the witnesses whose cosignature verified, counting each
// member of each group once. Each failure wraps its own sentinel error
// (ErrMalformedCheckpoint, ErrUnknownLog, ErrLogSignature, ErrCosignature,
// ErrQuorum). Signatures by keys not in the policy are ignored; a
// signature that names a policy witness but does not verify rejects the
// note (ErrCosignature), as signed-note recommends. String gives a
// canonical form that Parse round-trips.
//
// The tests prove it: TestParse quotes the spec's rules in accepted and
// refused cases, TestParseLimits checks the limits, TestRoundTrip checks
// String, TestVerify signs checkpoints with keys made in the test
// (including the spec's X-and-Y example), TestVerifyMLDSA and
// TestMLDSACosignatureBytes check ML-DSA-44 cosignatures, also against the
// spec's cosigned_message built by hand and verified with filippo.io/mldsa,
// TestGoldenMLDSA keeps testdata/mldsa44.* verifying, and FuzzParse and
// FuzzVerify (seeds in testdata/fuzz) check that no input panics, that accepted
// policies round-trip and that accepted checkpoints really meet the quorum.
package policy
