package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/stict"
)

// TestSTICTMetadata: the real binary serves the STI-CT log's CT log list
// v3 entry at /stict/log.v3.json: its log ID and key, its public URL as
// submission and monitoring URL, usable since its key was made, MMD 60 s.
func TestSTICTMetadata(t *testing.T) {
	bin, _ := binaries(t)
	dir := t.TempDir()
	stictPKI(t, dir)
	srv := startServer(t, bin, dir, "-stict-roots", "pki/root.pem")
	_, logID := stictPublicKey(t, dir)
	resp, b := httpDo(t, "GET", srv.url+"/stict/log.v3.json", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("log.v3.json: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var md stict.LogMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "keys", "stict-p256.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	usable, ok := md.State["usable"]
	if string(md.LogID) != string(logID[:]) || md.SubmissionURL != srv.url+"/stict/" || md.MonitoringURL != srv.url+"/stict/" ||
		md.MMD != 60 || !ok || len(md.State) != 1 || usable.Timestamp.Sub(fi.ModTime()).Abs() > time.Second || md.TemporalInterval != nil {
		t.Fatalf("log.v3.json: %s (key made %s)", b, fi.ModTime())
	}
}
