package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSTICTAuditMonitor runs vesper's audit and monitor against the real
// binary's STI-CT log: the audit checks every chain, the monitor's filters
// select certificates by telephone number, range and SPC, and a tampered
// issuer or other pinned roots fail the audit. It runs on each backend;
// on aws the audit from files reads a copy of the bucket.
func TestSTICTAuditMonitor(t *testing.T) {
	bin, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testSTICTAuditMonitor(t, be, bin, cli) })
}

func testSTICTAuditMonitor(t *testing.T, be *backend, bin, cli string) {
	dir := t.TempDir()
	p := stictPKI(t, dir)
	srv, _ := be.startSTICT(t, bin, dir)
	v1 := srv.url + "/stict/v1/"
	addChain(t, v1, p.Chain(p.TN), false)     // 12025550100+100, 18001231234
	addChain(t, v1, p.Chain(p.Precert), true) // the same numbers
	addChain(t, v1, p.Chain(p.SPC), false)    // SPC 1234
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	run(0, "trust", "-server", srv.url, "-out", "trust.json")

	out := run(0, "audit", "-trust", "trust.json", "-log", "stict")
	if !strings.Contains(out, "audit OK") || !strings.Contains(out, "every chain verifies") || !strings.Contains(out, "size 3") {
		t.Fatalf("audit: %s", out)
	}
	out = run(0, "audit", "-trust", "trust.json", "-log", "stict", "-roots", "pki/root.pem")
	if !strings.Contains(out, "audit OK") {
		t.Fatalf("audit with pinned roots: %s", out)
	}
	out = run(1, "audit", "-trust", "trust.json", "-log", "stict", "-roots", "pki/other-root.pem")
	if !strings.Contains(out, "entry 0") || !strings.Contains(out, "should have refused") {
		t.Fatalf("audit against other roots: %s", out)
	}

	monitor := func(state string, filter ...string) []certLine {
		t.Helper()
		out := run(0, append([]string{"monitor", "-trust", "trust.json", "-log", "stict", "-state", state, "-once"}, filter...)...)
		var lines []certLine
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var c certLine
			if err := json.Unmarshal([]byte(l), &c); err != nil {
				t.Fatalf("monitor line %q: %v", l, err)
			}
			lines = append(lines, c)
		}
		return lines
	}
	indices := func(ls []certLine) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.Type[:4]+":"+string(rune('0'+l.Index)))
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		state  string
		filter []string
		want   string
	}{
		{"all", nil, "cert:0 prec:1 cert:2"},
		{"tn", []string{"-tn", "12025550142"}, "cert:0 prec:1"},
		{"one", []string{"-tn", "18001231234"}, "cert:0 prec:1"},
		{"range", []string{"-tn-range", "12025550190,20"}, "cert:0 prec:1"},
		{"outside", []string{"-tn-range", "12025550200,20"}, ""},
		{"spc", []string{"-spc", "1234"}, "cert:2"},
	} {
		if got := indices(monitor(c.state, c.filter...)); got != c.want {
			t.Errorf("monitor %v: %q, want %q", c.filter, got, c.want)
		}
	}
	if l := monitor("detail", "-spc", "1234"); len(l) != 1 || l[0].TNAuthList != "spc:1234" || !strings.Contains(l[0].Subject, "STI SPC certificate") {
		t.Errorf("SPC line: %+v", l)
	}
	run(2, "monitor", "-trust", "trust.json", "-log", "stict", "-state", "x", "-agent", "abc")
	run(2, "monitor", "-trust", "trust.json", "-state", "x", "-tn", "12025550142")

	// The log as stored (its directory, or a copy of its bucket) audits
	// from files; an issuer replaced in it fails that audit.
	logDir := be.logDir(t, dir, "stict")
	out = run(0, "audit", "-trust", "trust.json", "-log", "stict", "-dir", logDir, "-roots", "pki/root.pem")
	if !strings.Contains(out, "audit OK") || !strings.Contains(out, "size 3") {
		t.Fatalf("audit of the stored log: %s", out)
	}
	fp := sha256.Sum256(p.Intermediate.DER)
	issuer := filepath.Join(logDir, "issuer", hex.EncodeToString(fp[:]))
	if err := os.WriteFile(issuer, p.OtherRoot.DER, 0o644); err != nil {
		t.Fatal(err)
	}
	out = run(1, "audit", "-trust", "trust.json", "-log", "stict", "-dir", logDir, "-roots", "pki/root.pem")
	if !strings.Contains(out, "does not hash to its name") {
		t.Fatalf("audit with a replaced issuer: %s", out)
	}
	srv.stop(t)
}

// certLine mirrors the STI-CT monitor line of cmd/vesper.
type certLine struct {
	Index      uint64 `json:"index"`
	Type       string `json:"type"`
	Subject    string `json:"subject"`
	TNAuthList string `json:"tnauthlist"`
}
