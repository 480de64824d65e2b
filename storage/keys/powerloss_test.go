package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/storage/faultfs"
)

// TestWriteFileSurvivesPowerCut writes (and LockDir makes a directory) into directories that do not exist
// yet, on a filesystem that drops at a power cut whatever was not synced
// (file and directory): once WriteFile has returned, the file is there.
func TestWriteFileSurvivesPowerCut(t *testing.T) {
	faultfs.Require(t)
	backing, mnt := t.TempDir(), t.TempDir()
	fs, err := faultfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"top":         "one",
		"a/b/c/deep":  "two",
		"a/b/sibling": "three",
	}
	for name, data := range files {
		if err := WriteFile(filepath.Join(mnt, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A data directory made by LockDir, as a server's first start does.
	lock, err := LockDir(filepath.Join(mnt, "data", "dir"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	lock.Close()
	report, err := fs.Cut()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range report {
		// The lock file is made again at each start; it need not survive.
		if !strings.HasPrefix(line, "data/dir/.lock:") {
			t.Errorf("the cut dropped %s", line)
		}
	}
	if fi, err := os.Stat(filepath.Join(backing, "data", "dir")); err != nil || !fi.IsDir() {
		t.Errorf("the directory LockDir made is gone after the cut: %v", err)
	}
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(backing, name))
		if err != nil || string(b) != want {
			t.Errorf("%s after the cut: %q, %v; want %q", name, b, err, want)
		}
	}
}

// TestRemoveSurvivesPowerCut: once Remove has returned, the file stays
// removed after a power cut (its directory entry was synced away).
func TestRemoveSurvivesPowerCut(t *testing.T) {
	faultfs.Require(t)
	backing, mnt := t.TempDir(), t.TempDir()
	fs, err := faultfs.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "records", "gone")
	if err := WriteFile(path, []byte("record"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Cut(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(backing, "records", "gone")); !os.IsNotExist(err) {
		t.Errorf("a removed file is back after the cut: %v", err)
	}
}
