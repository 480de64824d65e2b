// Package log runs one Tessera-backed transparency log: it appends entries,
// waits until a published checkpoint covers them, deduplicates by an
// identity the log's Format chooses (exactly across the processes that
// share a backend, with Claims), builds inclusion proofs from the log's
// own tiles, and serves the tlog-tiles (or static-ct-api) read API.
//
// It is what the servers of vesperlog's two logs run on (log/vetting/server,
// log/stict/server, wired by cmd/vesperlog); verifiers never import it,
// and import the formats in log/vetting and log/stict instead. The one table of error classes, mapping each to
// an HTTP status and an RFC 9457 problem title, is package log/problem.
//
// A log may sign each checkpoint with more than one key (Options.ExtraSigners:
// the STI-CT log's Ed25519 key for C2SP witnesses). With witnesses, Tessera
// asks them through a WitnessRecorder, so that a submission whose checkpoint
// did not get its quorum in time answers with which witness refused and why
// (NotPublished).
//
// Admission bounds the submissions a server has taken on across its logs,
// so that past its capacity it answers 503 at once rather than queue work
// for the CPU; Prover builds proofs from tiles and node hashes that the
// requests of the latest tree sizes share.
//
// The durability order of an Add: Tessera sequences the entry and writes its
// bundle and tiles, integrates it into the tree, signs (and, with witnesses,
// cosigns) and publishes a checkpoint; only then does Add return, so a
// receipt is never issued for an entry that a published checkpoint does not
// cover.
package log
