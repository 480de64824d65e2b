// Package keys reads and writes vesperlog's key files: checkpoint and
// witness signing keys (signed-note private keys), receipt and agent keys
// (private JWKs). Files are written atomically (temporary file, fsync,
// rename, fsync of the directory) with mode 0600, and a private key file that
// others can read is refused, as ssh does. LockDir keeps a data directory
// to one process; LockFile keeps a key file from being replaced (rotated)
// under a process using it.
//
// It imports no server code, so the vesper command uses it for keygen.
package keys
