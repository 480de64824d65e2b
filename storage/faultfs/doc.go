// Package faultfs is a test filesystem that loses, at a simulated power cut,
// every write that was not made durable. It exists for the power-loss tests
// (cmd/vesperlog's TestPowerLoss), which run the real binaries on it; it is
// not used by any server.
//
// A Mount is a FUSE loopback (github.com/hanwen/go-fuse/v2) over a backing
// directory: programs see an ordinary filesystem. Beside it, faultfs keeps
// the durable state, in the strict POSIX model of fsync(2):
//
//   - A file's data (and its size) is durable only as of its last fsync or
//     fdatasync, or of a write through a descriptor opened with O_SYNC or
//     O_DSYNC (which covers that write). A file that was never synced is
//     empty after a cut, if it exists at all.
//   - A directory entry (create, mkdir, unlink, rmdir, rename, link,
//     symlink) is durable only after an fsync of that directory. A rename
//     between two directories needs both. A new directory's own entries need
//     an fsync of the new directory.
//   - Nothing else makes anything durable: not close, not a clean exit of
//     the writer, not time passing, not sync(2) or syncfs(2) (which FUSE does
//     not forward), not a shared mapping until msync or fsync reaches us.
//     Metadata other than size and the entries (mode, times, xattrs) is not
//     modelled.
//
// This is stricter than Linux ext4 with data=ordered, which commits the
// metadata of a rename or create with the data it depends on within seconds,
// and stricter than most real disks; that is the point. A program that
// survives cuts here relies only on what POSIX promises, so it survives any
// filesystem that keeps those promises. A program that does not (a file
// renamed into place without fsync, a new file whose directory was never
// synced) loses that write here at every cut, where a real machine loses it
// only sometimes.
//
// Cut is the power cut: the filesystem stops answering (every later
// operation fails with EIO), the mount is taken away, and the backing
// directory is rewritten to the durable state. Mount the same backing
// directory again to serve what survived. Cut reports what it dropped, so
// that a test that finds a lost write can name the file.
//
// Mounting needs root and /dev/fuse. faultfs mounts with the mount(2) system
// call (go-fuse's DirectMount), so it needs no fusermount binary.
package faultfs
