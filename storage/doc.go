// Package storage opens what a vesperlog log is stored in, chosen by one
// setting: the Tessera driver for its tiles and entries, and the antispam
// store that remembers which entries it already holds.
//
// Backends:
//
//   - posix (the default): Tessera's POSIX driver in <dir>/<log>, and
//     Tessera's Badger antispam in <dir>/<log>-antispam. One process owns a
//     directory at a time; both stores take a lock on it.
//
// The aws and gcp backends of the design are not built yet; asking for one
// is an error that says so.
package storage
