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
// Logs use Ed25519 note keys (type 0x01) whose key name is the log's
// checkpoint origin; witnesses use Ed25519 cosignature/v1 keys (type 0x04,
// https://c2sp.org/tlog-cosignature). Beyond the spec, Parse also refuses:
// a final line without a newline, thresholds with leading zeroes, vkeys
// with an unchecked key ID or non-canonical base64, two logs with the same
// origin, the same public key used by a log and a witness, and two keys
// with the same key name and key ID. Comments are whole lines only; a '#'
// after a field is part of the text. The limits (MaxPolicySize, MaxLines,
// MaxLogs, MaxWitnesses, MaxGroups) are eight times the spec's
// recommended minimums.
//
// Policy.Verify checks a signed checkpoint (https://c2sp.org/tlog-checkpoint,
// https://c2sp.org/signed-note): the body strictly, the log's signature, and
// the quorum over the cosignatures that verify, each failure wrapping its
// own sentinel error. String gives a canonical form that Parse round-trips.
//
// The tests prove it: TestParse quotes the spec's rules with accepted and
// refused cases, TestRoundTrip checks String, TestVerify signs checkpoints
// with keys made in the test (including the spec's X-and-Y example), and
// FuzzParse and FuzzVerify check that no input panics, that accepted
// policies round-trip and that accepted checkpoints really meet the quorum.
package policy
