//go:build !linux

package storage

// checkFreeSpace is checked on Linux only (see freespace_linux.go).
func checkFreeSpace(string) error { return nil }
