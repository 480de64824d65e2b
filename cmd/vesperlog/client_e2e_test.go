package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientEndToEnd: a verifier follows, proves and audits a real
// vesperlog with the vesper command, and catches it tampering and rolling
// back, with evidence a third party can check. It runs on each backend: on
// aws the operator tampers with the objects in the bucket.
func TestClientEndToEnd(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testClientEndToEnd(t, be, server, cli) })
}

func testClientEndToEnd(t *testing.T, be *backend, server, cli string) {
	dir := t.TempDir()
	srv := be.start(t, server, dir)
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	run(0, "keygen", "agent", "-out", "va.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "va")
	digests := func(prefix string, n int) string {
		var lines []string
		for i := 0; i < n; i++ {
			d := make([]byte, 32)
			copy(d, fmt.Sprintf("%s %d", prefix, i))
			lines = append(lines, base64.RawURLEncoding.EncodeToString(d))
		}
		name := prefix + ".txt"
		os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return name
	}
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digests", digests("first", 300))
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	fetch(t, srv.url+"/vetting/v1/agents", filepath.Join(dir, "agents.json"))

	if out := run(0, "checkpoint", "-trust", "trust.json", "-state", "state"); !strings.Contains(out, "size 300") {
		t.Fatalf("checkpoint: %s", out)
	}
	if out := run(0, "audit", "-trust", "trust.json", "-agents", "agents.json"); !strings.Contains(out, "audit OK") || !strings.Contains(out, "agent signature verifies") {
		t.Fatalf("audit: %s", out)
	}
	run(0, "proof", "inclusion", "-trust", "trust.json", "-index", "257")
	run(0, "proof", "consistency", "-trust", "trust.json", "-old", "100")
	run(0, "proof", "consistency", "-trust", "trust.json", "-old", "100", "-new", "257")
	run(2, "proof", "consistency", "-trust", "trust.json", "-old", "258", "-new", "257")
	out := run(0, "monitor", "-trust", "trust.json", "-state", "mon", "-once")
	if n := strings.Count(out, "\n"); n != 300 {
		t.Fatalf("monitor printed %d entries, want 300", n)
	}
	saved := be.readObject(t, dir, "vetting/checkpoint")
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digests", digests("second", 2))
	out = run(0, "monitor", "-trust", "trust.json", "-state", "mon", "-once")
	var line struct {
		Index uint64 `json:"index"`
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &line) != nil || line.Index != 300 {
		t.Fatalf("second monitor run: %q", out)
	}
	if out := run(0, "monitor", "-trust", "trust.json", "-state", "mon2", "-once", "-agent", "nobody"); out != "" {
		t.Fatalf("filtered monitor: %q", out)
	}

	// The operator tampers with a tile (in the log's files, or its bucket).
	const tile = "vetting/tile/0/000"
	good := be.readObject(t, dir, tile)
	bad := append([]byte(nil), good...)
	bad[40] ^= 1
	be.writeObject(t, dir, tile, bad)
	if out := run(1, "audit", "-trust", "trust.json"); !strings.Contains(out, "disagree") {
		t.Fatalf("audit of a tampered tile: %s", out)
	}
	be.writeObject(t, dir, tile, good)

	// The operator rolls the checkpoint back.
	be.writeObject(t, dir, "vetting/checkpoint", saved)
	out = run(1, "checkpoint", "-trust", "trust.json", "-state", "mon", "-evidence", "evidence.json")
	if !strings.Contains(out, "rollback") || !strings.Contains(out, "evidence written to evidence.json") {
		t.Fatalf("checkpoint after a rollback: %s", out)
	}
	if out := run(0, "check-evidence", "-log-vkey", srv.vkey, "evidence.json"); !strings.Contains(out, "evidence holds: rollback") {
		t.Fatalf("check-evidence: %s", out)
	}
}
