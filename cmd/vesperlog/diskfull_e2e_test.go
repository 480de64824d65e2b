package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStorageFull: on a full filesystem a submission is a 503 that says the
// log's storage is full (with a Retry-After), not a 500; reads go on; no
// index is used up; and writes resume by themselves once space is freed.
// It mounts a small tmpfs, so it needs root (CI runs as root).
func TestStorageFull(t *testing.T) {
	server, cli := binaries(t)
	dir := tmpfs(t, "256m")
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	srv := startServer(t, server, dir)
	newAgent(t, cli, dir)
	digest := func(i int) string {
		return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%032d", i)))
	}
	if out := run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", digest(0)); !strings.Contains(out, "logged at index 0") {
		t.Fatal(out)
	}

	filler := fill(t, dir)

	for i := 1; i <= 2; i++ {
		out := run(1, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", digest(i))
		if !strings.Contains(out, "The log's storage is full; retry later") || !strings.Contains(out, "(HTTP 503)") {
			t.Fatalf("submission on a full filesystem: %s", out)
		}
	}
	resp, err := http.Get(srv.url + "/vetting/checkpoint")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reading the checkpoint on a full filesystem: %v %v", err, resp)
	}
	resp.Body.Close()

	// Space again: submissions are taken, from the next index on.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var out string
	eventually(t, 20*time.Second, "a submission after space was freed", func() (bool, string) {
		cmd := exec.Command(cli, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", digest(3))
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		out = string(b)
		return err == nil, out
	})
	if !strings.Contains(out, "logged at index 1") {
		t.Errorf("after space was freed: %s", out)
	}
	srv.stop(t)
}

// tmpfs mounts a tmpfs of the given size on a new directory, or skips the
// test where that needs root (it fails under CI=true).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs: %v %s", err, out)
		}
		t.Skipf("mounting a tmpfs needs root: %v %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill takes all the free space of dir's filesystem, leaving at most 4 KiB,
// with one file, whose path it returns.
func fill(t *testing.T, dir string) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*int64(st.Bsize)-4096); err != nil {
		t.Fatal(err)
	}
	return filler
}

// TestStartOnFullDisk: a server started on a full filesystem refuses in
// one line that names the filesystem's free space, where Badger would die
// of SIGBUS with a long trace; with space again it starts.
func TestStartOnFullDisk(t *testing.T) {
	server, _ := binaries(t)
	dir := tmpfs(t, "128m")
	startServer(t, server, dir).stop(t)
	filler := fill(t, dir)
	cmd := exec.Command(server, "-addr", "127.0.0.1:0", "-data", "data")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("start on a full disk: %v\n%s", err, out)
	}
	last := lastLine(string(out))
	if strings.Contains(string(out), "SIGBUS") || !strings.HasPrefix(last, "vesperlog: data directory data: its filesystem has 0 MiB free") ||
		!strings.HasSuffix(last, "free some space first") {
		t.Fatalf("start on a full disk said:\n%s", out)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	startServer(t, server, dir).stop(t)
}
