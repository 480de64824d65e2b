package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/vetting"
)

// TestAgentsRevokeAndLimit: agents revoke and agents limit edit the
// registry file; a refused edit is one line, and leaves the file as it was.
func TestAgentsRevokeAndLimit(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "agents.json")
	vesper := func(want int, wantOut string, args ...string) {
		t.Helper()
		before, _ := os.ReadFile(reg)
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		if code != want || !strings.Contains(out.String()+errb.String(), wantOut) {
			t.Fatalf("vesper %q: exit %d, %s%s; want %d and %q", args, code, out.String(), errb.String(), want, wantOut)
		}
		if code != 0 {
			if strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("vesper %q: error is not one line: %q", args, errb.String())
			}
			if after, _ := os.ReadFile(reg); !bytes.Equal(before, after) {
				t.Errorf("vesper %q failed and changed the registry", args)
			}
		}
	}
	vesper(2, "-agents, -name and -reason are required", "agents", "revoke", "-agents", reg, "-name", "va")
	vesper(1, "no agent registry at", "agents", "revoke", "-agents", reg, "-name", "va", "-reason", "x")
	for _, n := range []string{"va", "vb"} {
		vesper(0, "", "keygen", "agent", "-out", filepath.Join(dir, n+".jwk"))
		vesper(0, "registered agent", "agents", "add", "-create", "-agents", reg, "-name", n, "-key", filepath.Join(dir, n+".pub.jwk"))
	}

	// Limits: the default, one agent's own, then cleared.
	vesper(0, `agent "vb": 10/s, burst 100 (the default)`, "agents", "limit", "-agents", reg, "-rate", "10", "-burst", "100")
	vesper(0, `agent "va": 0.5/s, burst 5`, "agents", "limit", "-agents", reg, "-name", "va", "-rate", "0.5", "-burst", "5")
	vesper(2, "either -rate and -burst, or -clear", "agents", "limit", "-agents", reg, "-rate", "1", "-clear")
	vesper(2, "either -rate and -burst, or -clear", "agents", "limit", "-agents", reg)
	vesper(1, "burst must be 1 to", "agents", "limit", "-agents", reg, "-rate", "1", "-burst", "0")
	vesper(1, `no agent named "vc"`, "agents", "limit", "-agents", reg, "-name", "vc", "-rate", "1", "-burst", "1")
	vesper(0, `agent "va": 10/s, burst 100 (the default)`, "agents", "limit", "-agents", reg, "-name", "va", "-clear")
	vesper(0, `agent "va": unlimited (the default)`, "agents", "limit", "-agents", reg, "-clear")

	// Revocation: a time, a reason, and no going back.
	vesper(2, "is not an RFC 3339 time", "agents", "revoke", "-agents", reg, "-name", "va", "-reason", "x", "-at", "yesterday")
	vesper(1, "reason must be 1 to 256 bytes", "agents", "revoke", "-agents", reg, "-name", "va", "-reason", strings.Repeat("x", 257))
	vesper(0, `revoked agent "va"`, "agents", "revoke", "-agents", reg, "-name", "va", "-reason", "key compromised", "-at", "2026-11-30T04:00:00Z")
	vesper(1, "can only be moved earlier", "agents", "revoke", "-agents", reg, "-name", "va", "-reason", "again", "-at", "2026-11-30T05:00:00Z")
	vesper(1, "a revoked key cannot be registered again", "agents", "add", "-agents", reg, "-name", "va-new", "-key", filepath.Join(dir, "va.pub.jwk"))
	vesper(0, "at 2026-11-30T03:00:00Z: lost earlier", "agents", "revoke", "-agents", reg, "-name", "va", "-reason", "lost earlier", "-at", "2026-11-30T03:00:00Z")
	before := time.Now().UTC().Truncate(time.Millisecond)
	vesper(0, `revoked agent "vb"`, "agents", "revoke", "-agents", reg, "-name", "vb", "-reason", "contract ended")

	b, _ := os.ReadFile(reg)
	a, err := vetting.ParseAgents(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, ag := range a.List() {
		switch r := ag.Revoked; {
		case r == nil:
			t.Errorf("agent %q not revoked", ag.Name)
		case ag.Name == "va" && (!r.At.Equal(time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)) || r.Reason != "lost earlier"):
			t.Errorf("va: %+v", r)
		case ag.Name == "vb" && (r.At.Before(before) || r.At.After(time.Now()) || r.Reason != "contract ended"):
			t.Errorf("vb, revoked now: %+v", r)
		}
	}
}
