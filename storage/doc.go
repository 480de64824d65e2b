// Package storage holds the whole state of vesperlog's logs, chosen by one
// setting: for each log, the Tessera driver of its tiles and entries, its
// antispam store, any lookup index, objects beside the tiles (the STI-CT
// issuers), and a small state store for what is not Tessera's (the agent
// registry, each log's origin and key, the receipt key history).
//
// Backends:
//
//   - posix (the default): Tessera's POSIX driver in <dir>/<log>, Tessera's
//     Badger antispam in <dir>/<log>-antispam, objects as files under
//     <dir>/<log>/, state as files in <dir>. One process owns a directory:
//     Open locks it.
//   - aws: Tessera's AWS driver and AWS antispam on a MySQL-compatible
//     database and an S3-compatible bucket (MariaDB and versitygw in CI).
//     The DSN names a database D; each log's tables live in D_<log> (and an
//     index in D_<log>_<index>), because Tessera's table names are fixed.
//     Objects live in the bucket under <log>/ beside the tiles, state in
//     D's VesperState table. Any number of processes may share them: the
//     database coordinates, and Claims makes dedup exact across them.
//   - gcp: Tessera's GCP driver and antispam on Spanner and GCS, wired the
//     same way (Spanner databases D-<log>, state as GCS objects under
//     state/). It cannot run on this project's CI; no test pretends to.
//
// Backend.Close releases what Open took; each Tessera driver's background
// work stops with the log (log.Log.Close) that runs on it.
package storage
