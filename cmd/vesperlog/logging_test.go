package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLogBadgerLines: Badger's stderr lines come out of slog at their
// level, its INFO chatter below the default level, and every other line
// reaches the real stderr as it was. It swaps the process's os.Stderr, so
// it must not run in parallel with other tests.
func TestLogBadgerLines(t *testing.T) {
	var buf bytes.Buffer
	h, err := newLogHandler(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	// The "real" stderr, captured.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = pw
	defer func() { os.Stderr = saved }()
	restore, err := routeBadger(h)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "badger 2026/11/30 01:25:56 INFO: All 0 tables opened in 0s")
	fmt.Fprintln(os.Stderr, "badger 2026/11/30 01:25:56 WARNING: value log is large")
	fmt.Fprintln(os.Stderr, "panic-looking line: not Badger's  ")
	restore()
	os.Stderr = saved
	pw.Close()
	passed, _ := io.ReadAll(pr)
	out := buf.String()
	if strings.Contains(out, "tables opened") || !strings.Contains(out, `"level":"WARN","msg":"value log is large","lib":"badger"`) {
		t.Errorf("routed Badger lines:\n%s", out)
	}
	if string(passed) != "panic-looking line: not Badger's  \n" {
		t.Errorf("other stderr lines reached the real stderr as %q", passed)
	}
}

// TestLogLibraryLevels: a library's info (klog sends warnings as info) is
// debug; an error is logged once, then at debug while it repeats.
func TestLogLibraryLevels(t *testing.T) {
	var buf bytes.Buffer
	h, err := newLogHandler(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(newLibraryHandler(h)).With("lib", "tessera")
	l.Info("publishCheckpoint: witness failed")
	for range 3 {
		l.Error("Integrate failed")
	}
	if out := buf.String(); strings.Contains(out, "publishCheckpoint") || strings.Count(out, "Integrate failed") != 1 {
		t.Errorf("library lines:\n%s", out)
	}
	_ = l.Handler().Handle(context.Background(), slog.NewRecord(time.Now().Add(time.Minute), slog.LevelError, "Integrate failed", 0))
	if strings.Count(buf.String(), "Integrate failed") != 2 {
		t.Errorf("an error repeated after %s is not logged again:\n%s", repeatQuiet, buf.String())
	}
	if _, err := newLogHandler(&buf, "xml", "info"); err == nil {
		t.Error("-log-format xml accepted")
	}
	if _, err := newLogHandler(&buf, "text", "loud"); err == nil {
		t.Error("-log-level loud accepted")
	}
}
