// Package migrate copies a vesperlog posix data directory, both logs and
// everything beside them, into another storage backend (aws or gcp; posix
// too), and checks the copy before it reports success. It is server-side
// code: `vesperlog migrate` runs it with the server stopped.
//
// What is copied:
//
//   - each log's entries, with Tessera's migration support
//     (tessera.NewMigrationTarget, static-ct-api layout for the STI-CT
//     log): the entry bundles are copied and the target integrates them
//     into its own tiles, and Tessera fails if the target's root is not
//     the source's;
//   - the STI-CT issuer certificates (stict/issuer/<hex>), each checked
//     against its name;
//   - the state documents: each log's binding (log-<name>.json, written
//     from the source's keys for a directory from before bindings), the
//     agent registry (agents.json) and the receipt key history
//     (receipt-keys.json, merged into any the target has).
//
// What is checked: the source's checkpoints verify with each log's key
// (its binding, else its key file) or nothing is written; a target whose
// binding, agent registry or published checkpoint contradicts the source
// is refused before anything is written; and once Tessera has migrated a
// log, its root is computed again from the target's hash tiles and,
// separately, from its entry bundles, and both must be the source
// checkpoint's root.
//
// Not copied: the antispam (dedup) stores and the STI-CT leaf-hash index.
// They are rebuilt: on the first start on the target, their followers
// index the whole log from entry 0. Until the dedup follower has reached
// the migrated size, the log's catch-up gate answers adds with 503 (and
// Retry-After), so that no entry is logged twice meanwhile; lookups by
// leaf hash (get-proof-by-hash, receipt-by-hash) find an old entry once
// the leaf-hash follower has reached it. Nor are the key files: they stay
// files (keys/ under -data) whatever the backend, so the target's servers
// need the source's keys directory.
//
// Tessera's migration leaves the aws and gcp sequencers' next index at 0
// (see advanceSequencer): once a log is verified, Run advances it to the
// migrated size, without which the copy would accept no entry.
//
// The source is opened with storage.Open, so that its lock refuses a
// directory a running server holds; nothing in it is written (the lock
// file aside).
package migrate
