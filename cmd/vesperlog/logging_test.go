package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

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
