//go:build !powerlossbug

package keys

// syncWrites is false only in a build tagged powerlossbug, which
// cmd/vesperlog's TestPowerLossFindsUnsyncedWrite makes to prove that the
// power-loss test finds a file written without fsync.
const syncWrites = true
