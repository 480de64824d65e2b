// Package antispam is the posix backend's persistent dedup store: a
// tessera.Antispam on Badger, opened with bounded memory.
//
// It keeps the key layout of Tessera v1.0.4's storage/posix/antispam, so a
// data directory written by that store opens here unchanged: each identity
// maps to its entry's index (8 bytes, big-endian), and the key "@nextIdx"
// holds the follower's progress (the number of entries indexed).
//
// Tessera's store opens Badger with its defaults: five 64 MiB memtables, a
// 256 MiB block cache and every table index and bloom filter held in
// memory, so that its resident memory grows with the log. Its follower
// wakes once a second, writes at most 1,500 identities per transaction and
// refuses every add while more than 2,048 entries are unindexed. This one
// bounds Badger's caches (see Options), follows in larger transactions, and
// pushes back only when the unindexed gap is wider than the caller's
// in-memory dedup can cover.
package antispam
