package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/storage"
)

// TestRateLimitsAndRevocation runs on each backend, with the real
// binaries: an agent over its rate limit gets 429 with Retry-After and
// nothing is appended, while another agent gets through; a higher limit
// put in the registry applies without a restart; a revoked agent gets
// 403 and the log does not grow; a token and a receipt logged before the
// revocation still verify with vesper, which shows the revocation; and a
// revocation moved back before the entry makes vesper refuse them.
func TestRateLimitsAndRevocation(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testRateLimitsAndRevocation(t, be, server, cli) })
}

func testRateLimitsAndRevocation(t *testing.T, be *backend, server, cli string) {
	dir := t.TempDir()
	srv := be.start(t, server, dir)
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	va, vb := newAgentKey(t, cli, dir, "va"), newAgentKey(t, cli, dir, "vb")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	be.addAgent(t, server, cli, dir, "-name", "vb", "-key", "vb.pub.jwk")
	// va may log 3 statements at once, then one every 100 s; vb has no limit.
	be.editAgents(t, server, cli, dir, "limit", "-name", "va", "-rate", "0.01", "-burst", "3")
	waitRegistry(t, srv.url, `"rate":{"per_second":0.01,"burst":3}`)

	size := func() uint64 {
		t.Helper()
		time.Sleep(1500 * time.Millisecond) // past a checkpoint interval (aws: 1 s)
		_, cp, _ := servedLog(t, srv.url+"/vetting/", srv.vkey)
		return cp.Size
	}
	add := func(a *agentKey, label string) (int, http.Header, problem.Details) {
		t.Helper()
		jws, _ := a.statement(label)
		resp, body := httpDo(t, "POST", srv.url+"/vetting/v1/add", "application/jose", []byte(jws))
		var p problem.Details
		if resp.StatusCode != 200 && (resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil) {
			t.Fatalf("%s: %d is not a problem: %s", label, resp.StatusCode, body)
		}
		return resp.StatusCode, resp.Header, p
	}

	// A batch of 3 uses va's burst; every statement counts.
	var batch []string
	for i := range 3 {
		jws, _ := va.statement(fmt.Sprintf("va batch %d", i))
		batch = append(batch, jws)
	}
	body, _ := json.Marshal(vetting.BatchRequest{Statements: batch})
	if resp, out := httpDo(t, "POST", srv.url+"/vetting/v1/add-batch", "application/json", body); resp.StatusCode != 200 || strings.Count(string(out), `"receipt":"`) != 3 {
		t.Fatalf("va's batch of 3: %d %s", resp.StatusCode, out)
	}
	code, hdr, p := add(va, "va over its limit")
	retry, _ := strconv.Atoi(hdr.Get("Retry-After"))
	if code != 429 || retry < 1 || retry > 100 || !strings.Contains(p.Detail, `agent "va" may log 0.01/s, burst 3`) {
		t.Fatalf("va over its limit: %d, Retry-After %q, %+v", code, hdr.Get("Retry-After"), p)
	}
	if out := run(1, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("Q", 43)); !strings.Contains(out, "rate limit") {
		t.Errorf("vesper submit over the limit says: %s", out)
	}
	// vb is not held back by va's limit.
	if code, _, p := add(vb, "vb goes on"); code != 200 {
		t.Fatalf("vb: %d %+v", code, p)
	}
	if n := size(); n != 4 {
		t.Fatalf("log size %d after va's 3, its refusals, and vb's 1; want 4", n)
	}

	// The operator raises va's limit; the server takes it without a restart.
	be.editAgents(t, server, cli, dir, "limit", "-name", "va", "-rate", "100", "-burst", "10")
	waitRegistry(t, srv.url, `"rate":{"per_second":100,"burst":10}`)
	eventually(t, 5*time.Second, "va logs again at its new rate", func() (bool, string) {
		code, _, p := add(va, "va at its new rate")
		return code == 200, fmt.Sprint(code, p.Detail)
	})

	// va logs a digest and issues a token with its receipt ...
	digest := strings.Repeat("R", 42) + "E"
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", digest, "-sub", "Business_42", "-out", "receipt.jwt")
	run(0, "token", "issue", "-key", "va.jwk", "-iss", "https://va.example", "-sub", "Business_42", "-receipt", "receipt.jwt",
		"-kyc-data-hash", digest, "-out", "token.sdjwt")
	// ... and is revoked.
	be.editAgents(t, server, cli, dir, "revoke", "-name", "va", "-reason", "key compromised")
	waitRegistry(t, srv.url, `"reason":"key compromised"`)
	before := size()
	for _, label := range []string{"va after its revocation", "va at its new rate"} { // a new statement, and one logged before
		if code, _, p := add(va, label); code != 403 || !strings.Contains(p.Detail, `agent "va" was revoked at`) || !strings.Contains(p.Detail, "(key compromised)") {
			t.Fatalf("%s: %d %+v, want 403 naming the revocation", label, code, p)
		}
	}
	if after := size(); after != before {
		t.Fatalf("a revoked agent's submissions changed the log size from %d to %d", before, after)
	}
	if code, _, p := add(vb, "vb after va's revocation"); code != 200 {
		t.Fatalf("vb after va's revocation: %d %+v", code, p)
	}

	// A verifier with the registry as served now: the token and the
	// receipt, logged before the revocation, verify and show it.
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	fetch(t, srv.url+"/vetting/v1/agents", filepath.Join(dir, "issuers.json"))
	for _, out := range []string{
		run(0, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "token.sdjwt"),
		run(0, "verify-receipt", "-trust", "trust.json", "-agents", "issuers.json", "receipt.jwt"),
	} {
		if !strings.Contains(out, `✓ revocation: agent "va" was revoked at `) || !strings.Contains(out, "(key compromised)") || !strings.Contains(out, "before it") {
			t.Errorf("verifier output does not show the revocation:\n%s", out)
		}
	}
	var res struct {
		Valid         bool
		IssuerRevoked *vetting.Revocation `json:"issuer_revoked"`
	}
	if err := json.Unmarshal([]byte(run(0, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "-json", "token.sdjwt")), &res); err != nil ||
		!res.Valid || res.IssuerRevoked == nil || res.IssuerRevoked.Reason != "key compromised" {
		t.Errorf("token verify -json: %+v %v", res, err)
	}
	if out := run(0, "audit", "-trust", "trust.json", "-agents", "issuers.json"); !strings.Contains(out, "no agent logged after its revocation") {
		t.Errorf("audit with the served registry: %s", out)
	}
	// Moved back before the entry was logged, the revocation refuses both,
	// and an audit reports each of va's entries.
	run(0, "agents", "revoke", "-agents", "issuers.json", "-name", "va", "-reason", "compromised since 2020", "-at", "2020-01-01T00:00:00Z")
	if out := run(1, "audit", "-trust", "trust.json", "-agents", "issuers.json"); len(regexp.MustCompile(`(?m)^entry \d+: logged at .*: agent "va" was revoked at 2020-01-01T00:00:00Z`).FindAllString(out, -1)) != 5 {
		t.Errorf("audit with va revoked since 2020 does not report va's 5 entries: %s", out)
	}
	for _, args := range [][]string{
		{"token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "token.sdjwt"},
		{"verify-receipt", "-trust", "trust.json", "-agents", "issuers.json", "receipt.jwt"},
	} {
		if out := run(1, args...); !strings.Contains(out, "agent revoked") || !strings.Contains(out, "after it") {
			t.Errorf("vesper %s with the entry logged after the revocation: %s", args[0], out)
		}
	}

	// The refusals are counted by class and agent.
	m := scrape(t, srv.url)
	for outcome, least := range map[string]float64{"rate_limited": 2, "forbidden": 2} {
		if got, _ := metricValue(m, "vesperlog_submissions_total", `agent="va"`, `log="vetting"`, `outcome="`+outcome+`"`); got < least {
			t.Errorf("submissions of va refused as %s: %v counted, want at least %v", outcome, got, least)
		}
	}
}

// editAgents runs vesper agents VERB (args as it takes them, less -agents)
// where vesperlog on the backend reads the registry: posix's
// data/agents.json in dir, or a copy (dir/registry.json, which addAgent
// keeps) put back with vesperlog agents put.
func (b *backend) editAgents(t *testing.T, server, cli, dir, verb string, args ...string) {
	t.Helper()
	if b.name == storage.POSIX {
		runVesper(t, cli, dir, 0, append([]string{"agents", verb, "-agents", "data/agents.json"}, args...)...)
		return
	}
	runVesper(t, cli, dir, 0, append([]string{"agents", verb, "-agents", "registry.json"}, args...)...)
	runVesper(t, server, dir, 0, append(append([]string{"agents", "put"}, b.flags...), "registry.json")...)
}

// waitRegistry waits until the server at url serves a registry holding
// want: every front end reloads it within a second (at once on posix).
func waitRegistry(t *testing.T, url, want string) {
	t.Helper()
	eventually(t, 10*time.Second, "registry with "+want+" at "+url, func() (bool, string) {
		resp, body := httpDo(t, "GET", url+"/vetting/v1/agents", "", nil)
		return resp.StatusCode == 200 && strings.Contains(string(body), want), string(body)
	})
}
