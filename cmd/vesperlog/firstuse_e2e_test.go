package main

import (
	"bytes"
	"encoding/json"
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

// TestWitnessesAddedLater: a log that ran without witnesses is restarted
// with a policy. Its old checkpoint does not meet the policy, so a receipt
// asked for at once is a 503 that says why and when to retry; within the
// republish interval the log has its witnesses cosign the same tree, and
// the receipt then verifies under the re-pinned trust.
func TestWitnessesAddedLater(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	srv := startServer(t, server, dir)
	newAgent(t, cli, dir)
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("W", 42)+"E", "-out", "r0.jwt")
	srv.stop(t)

	startWitnesses(t, wbin, dir, srv.vkey, "ed25519", "ed25519")
	srv = startServer(t, server, dir, "-witness-policy", "witnesses.policy")
	start := time.Now()
	resp, err := http.Get(srv.url + "/vetting/v1/receipt/0")
	if err != nil {
		t.Fatal(err)
	}
	var prob struct{ Title, Detail string }
	_ = json.NewDecoder(resp.Body).Decode(&prob)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(prob.Detail, "does not meet the witness policy") ||
		!strings.Contains(prob.Detail, "asks its witnesses again at least every 30s") {
		t.Fatalf("receipt before the witnesses cosigned: %d Retry-After %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), prob)
	}
	// The same tree, cosigned, without any new entry.
	eventually(t, 60*time.Second, "a cosigned checkpoint", func() (bool, string) {
		resp, err := http.Get(srv.url + "/vetting/v1/receipt/0")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	t.Logf("cosigned after %s", time.Since(start).Round(time.Second))
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	var rr struct{ Receipt string }
	if err := json.Unmarshal(httpGet200(t, srv.url+"/vetting/v1/receipt/0"), &rr); err != nil || rr.Receipt == "" {
		t.Fatalf("receipt/0: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "r0-cosigned.jwt"), []byte(rr.Receipt), 0o644)
	if out := run(0, "verify-receipt", "-trust", "trust.json", "r0-cosigned.jwt"); !strings.Contains(out, `quorum "g" met by w1, w2`) {
		t.Errorf("re-fetched receipt: %s", out)
	}
	// The receipt issued before the witnesses does not meet the new trust.
	run(1, "verify-receipt", "-trust", "trust.json", "r0.jwt")
	srv.stop(t)
}

// TestStopWithWitnessesDown: a stop waits for the accepted entries to be
// published and says what it waits for; a second signal stops at once,
// saying what stays unpublished, and a fresh log whose witnesses are down
// refuses to start with one line saying what to do.
func TestStopWithWitnessesDown(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	first := startServer(t, server, dir)
	first.stop(t)
	_, _, procs := startWitnesses(t, wbin, dir, first.vkey, "ed25519", "ed25519")
	srv := startServer(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "20s")
	newAgent(t, cli, dir)
	for _, p := range procs {
		stopProcess(t, p)
	}
	// A submission waits for a checkpoint its witnesses cannot cosign.
	submitted := make(chan string, 1)
	go func() {
		cmd := exec.Command(cli, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("S", 42)+"E")
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		submitted <- string(out)
	}()
	time.Sleep(2 * time.Second)

	// One signal: the server waits for the entry...
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", srv.cmd.Process.Pid)); err != nil || strings.Contains(string(st), ") Z ") {
		t.Fatalf("the server did not wait for its pending entry after one signal")
	}
	// ... and a second stops it at once, the waiting submission answered 503.
	start := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := srv.cmd.Wait()
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Fatalf("second signal: exit %v after %s", err, took)
	}
	if out := <-submitted; !strings.Contains(out, "503") || !strings.Contains(out, "the log is stopping") {
		t.Errorf("the waiting submission: %s", out)
	}
	stderr := srv.stderr.String()
	for _, want := range []string{
		`pending="1 entries of the vetting log (witness `,
		"signal again to stop at once",
		"vesperlog: stopped at once without publishing 1 entries of the vetting log (witness ",
		"they stay in the log and are published after the next start",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// A fresh log with its witnesses down: one line, and what to do.
	cmd := exec.Command(server, "-addr", "127.0.0.1:0", "-data", "fresh", "-witness-policy", "witnesses.policy")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatal("a fresh log started with its witnesses down")
	}
	last := lastLine(out.String())
	if !strings.HasPrefix(last, "vesperlog: starting log ") || !strings.Contains(last, "did not answer") ||
		!strings.HasSuffix(last, "make them reachable, or create the log by starting once without witnesses") {
		t.Errorf("fresh log, witnesses down: %q", last)
	}
	if _, err := os.Stat(filepath.Join(dir, "fresh")); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return fmt.Sprint(lines[len(lines)-1])
}

// TestCanonicalPaths: a path not in canonical form is a 400 problem that
// names the canonical one, not net/http's plain-text redirect.
func TestCanonicalPaths(t *testing.T) {
	server, _ := binaries(t)
	dir := t.TempDir()
	srv := startServer(t, server, dir)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"//vetting/checkpoint", "/vetting/../vetting/checkpoint", "/vetting/./checkpoint", "/.well-known//jwks.json",
		// Traversal, plain and percent-encoded: the decoded path is checked.
		"/vetting/../keys", "/vetting/%2e%2e/keys", "/%2e%2e/%2e%2e/etc/passwd", "/vetting/tile/..%2f..%2fkeys", "/vetting/%2Fcheckpoint"} {
		resp, err := client.Get(srv.url + p)
		if err != nil {
			t.Fatal(err)
		}
		var prob struct{ Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&prob)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(prob.Detail, "not in canonical form") {
			t.Errorf("GET %s: %d %s %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), prob.Detail)
		}
	}
	// An encoded slash inside a segment names no route: a 404 problem.
	resp, err := client.Get(srv.url + "/vetting%2Fcheckpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /vetting%%2Fcheckpoint: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, err := client.Get(srv.url + "/vetting/checkpoint"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the canonical path: %v %v", err, resp)
	}
	srv.stop(t)
}
