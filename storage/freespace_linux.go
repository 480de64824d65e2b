package storage

import (
	"fmt"
	"syscall"
)

// minFreeSpace is the space a posix data directory's filesystem must have
// free for the logs to start. Badger, under Tessera's posix antispam, maps
// its memtable files into memory and dies with SIGBUS when a page it
// writes has no space behind it; a start on a full disk would do that.
const minFreeSpace = 64 << 20

// checkFreeSpace refuses, in one line, to start on a filesystem that has
// less than minFreeSpace free.
func checkFreeSpace(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < minFreeSpace {
		return fmt.Errorf("data directory %s: its filesystem has %d MiB free, and the logs need at least %d MiB to start (their dedup store maps files into memory): free some space first",
			dir, free>>20, minFreeSpace>>20)
	}
	return nil
}
