package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mounted is one backing directory and its mount, remounted after each cut.
type mounted struct {
	t       *testing.T
	backing string
	mnt     string
	fs      *FS
}

func mountT(t *testing.T) *mounted {
	t.Helper()
	Require(t)
	m := &mounted{t: t, backing: t.TempDir(), mnt: t.TempDir()}
	m.mount()
	t.Cleanup(func() {
		if m.fs != nil {
			if err := m.fs.Unmount(); err != nil {
				t.Error(err)
			}
		}
	})
	return m
}

func (m *mounted) mount() {
	m.t.Helper()
	f, err := Mount(m.backing, m.mnt)
	if err != nil {
		m.t.Fatal(err)
	}
	m.fs = f
}

// cut cuts the power, remounts, and returns the cut's report.
func (m *mounted) cut() []string {
	m.t.Helper()
	report, err := m.fs.Cut()
	m.fs = nil
	if err != nil {
		m.t.Fatal(err)
	}
	m.mount()
	return report
}

func (m *mounted) path(name string) string { return filepath.Join(m.mnt, name) }

// write writes data to name (created or truncated), fsyncing it if asked.
func (m *mounted) write(name, data string, fsync bool) {
	m.t.Helper()
	f, err := os.OpenFile(m.path(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		m.t.Fatal(err)
	}
	if fsync {
		if err := f.Sync(); err != nil {
			m.t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		m.t.Fatal(err)
	}
}

func (m *mounted) syncDir(name string) {
	m.t.Helper()
	d, err := os.Open(m.path(name))
	if err != nil {
		m.t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		m.t.Fatal(err)
	}
}

// content returns name's content, or "<absent>".
func (m *mounted) content(name string) string {
	m.t.Helper()
	b, err := os.ReadFile(m.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return "<absent>"
	} else if err != nil {
		m.t.Fatal(err)
	}
	return string(b)
}

func TestWriteWithoutFsyncIsLost(t *testing.T) {
	m := mountT(t)
	m.write("f", "durable", true)
	m.syncDir(".")
	m.write("f", "lost", false) // truncate and rewrite, no fsync
	if got := m.content("f"); got != "lost" {
		t.Fatalf("before the cut: %q", got)
	}
	report := m.cut()
	if got := m.content("f"); got != "durable" {
		t.Errorf("after the cut f = %q, want the synced %q", got, "durable")
	}
	if len(report) != 1 || !strings.HasPrefix(report[0], "f: data not synced") {
		t.Errorf("report = %q, want one line for f's data", report)
	}
}

func TestNewFileNeedsDirSync(t *testing.T) {
	m := mountT(t)
	m.write("linked", "data", true)
	m.syncDir(".")
	m.write("unlinked", "data", true) // file synced, directory not
	report := m.cut()
	if got := m.content("unlinked"); got != "<absent>" {
		t.Errorf("a new file whose directory was not synced survived: %q", got)
	}
	if got := m.content("linked"); got != "data" {
		t.Errorf("a synced file in a synced directory: %q, want %q", got, "data")
	}
	if len(report) != 1 || !strings.HasPrefix(report[0], "unlinked: entry not durable") {
		t.Errorf("report = %q", report)
	}
}

func TestDirSyncWithoutFileSyncKeepsAnEmptyFile(t *testing.T) {
	m := mountT(t)
	m.write("f", "data", false)
	m.syncDir(".")
	m.cut()
	if got := m.content("f"); got != "" {
		t.Errorf("f = %q, want it empty: its entry is durable, its data never was", got)
	}
}

func TestRenameNeedsDirSync(t *testing.T) {
	m := mountT(t)
	m.write("f", "old", true)
	m.syncDir(".")

	// The atomic-replace pattern without its last step.
	m.write("f.tmp", "new", true)
	if err := os.Rename(m.path("f.tmp"), m.path("f")); err != nil {
		t.Fatal(err)
	}
	report := m.cut()
	if got := m.content("f"); got != "old" {
		t.Errorf("after an unsynced rename f = %q, want %q", got, "old")
	}
	if len(report) != 1 || !strings.HasPrefix(report[0], "f: replaced, but not durably") {
		t.Errorf("report = %q, want one line for f's rename", report)
	}
	if got := m.content("f.tmp"); got != "<absent>" {
		t.Errorf("f.tmp = %q, want absent (never durably linked)", got)
	}

	// With the directory synced, the rename holds.
	m.write("f.tmp", "new", true)
	if err := os.Rename(m.path("f.tmp"), m.path("f")); err != nil {
		t.Fatal(err)
	}
	m.syncDir(".")
	m.cut()
	if got := m.content("f"); got != "new" {
		t.Errorf("after a synced rename f = %q, want %q", got, "new")
	}
}

func TestUnlinkNeedsDirSync(t *testing.T) {
	m := mountT(t)
	m.write("f", "data", true)
	m.syncDir(".")
	if err := os.Remove(m.path("f")); err != nil {
		t.Fatal(err)
	}
	// A new file may now get f's inode number in the backing directory;
	// its data must not leak into f's durable data.
	m.write("g", "other", true)
	report := m.cut()
	if got := m.content("f"); got != "data" {
		t.Errorf("after an unsynced unlink f = %q, want %q back", got, "data")
	}
	if want := "f: comes back"; len(report) != 2 || !strings.HasPrefix(report[0], want) {
		t.Errorf("report = %q, want a line starting %q", report, want)
	}
}

func TestNewDirectoryNeedsItsParentSynced(t *testing.T) {
	m := mountT(t)
	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.write("d/f", "data", true)
	m.syncDir("d") // d's entries, but not d's own entry in the root
	m.cut()
	if got := m.content("d/f"); got != "<absent>" {
		t.Errorf("d/f = %q, want it gone with d", got)
	}

	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.write("d/f", "data", true)
	m.syncDir("d")
	m.syncDir(".")
	m.cut()
	if got := m.content("d/f"); got != "data" {
		t.Errorf("d/f = %q, want %q", got, "data")
	}
}

func TestOSyncWritesAreDurable(t *testing.T) {
	m := mountT(t)
	f, err := os.OpenFile(m.path("f"), os.O_WRONLY|os.O_CREATE|os.O_SYNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.syncDir(".")
	m.cut()
	if got := m.content("f"); got != "data" {
		t.Errorf("f = %q, want the O_SYNC write %q", got, "data")
	}
	if s := m.fs.Stats(); s != (Stats{}) {
		t.Errorf("a fresh mount counts %+v", s)
	}
}

func TestSparseTruncateAndExtend(t *testing.T) {
	m := mountT(t)
	f, err := os.OpenFile(m.path("f"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Badger's pattern: extend a file sparse, write into it, sync.
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), 32<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16); err != nil { // shrink, then grow: the tail must read as zeros
		t.Fatal(err)
	}
	if err := f.Truncate(40 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("lost"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.syncDir(".")
	m.cut()
	b, err := os.ReadFile(m.path("f"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 40<<20 || string(b[:4]) != "head" || string(b[32<<20:32<<20+4]) != "\x00\x00\x00\x00" {
		t.Errorf("after the cut: %d bytes, head %q, at 32 MiB %q", len(b), b[:4], b[32<<20:32<<20+4])
	}
}

func TestOperationsFailAfterCut(t *testing.T) {
	m := mountT(t)
	f, err := os.OpenFile(m.path("f"), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { // ends when f is closed below
		_, err := m.fs.Cut()
		done <- err
	}()
	// The cut has begun when writes fail; Cut is then waiting for f.
	var werr error
	for i := 0; i < 100; i++ {
		if _, werr = f.WriteAt([]byte("x"), 0); werr != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(werr, syscall.EIO) && !errors.Is(werr, syscall.ENOTCONN) {
		t.Errorf("a write after the cut: %v, want EIO", werr)
	}
	f.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.fs = nil
	m.mount()
	if got := m.content("f"); got != "<absent>" {
		t.Errorf("f = %q, want absent", got)
	}
}

// An unlinked file whose entry is still durable keeps the data synced
// through a descriptor opened before the unlink, even after the backing
// filesystem has given its inode number to a new file.
func TestSyncAfterUnlinkReachesTheDurableFile(t *testing.T) {
	m := mountT(t)
	m.write("f", "old", true)
	m.syncDir(".")
	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(m.path("f")); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m.write("g", "other", true)
	m.cut()
	if got := m.content("f"); got != "new" {
		t.Errorf("f = %q, want %q: its unlink was not synced, its data was", got, "new")
	}
}
