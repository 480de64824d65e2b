package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func witnessBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/vesperlog/vesperlog/cmd/vesperwitness").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vesperwitness")
}

// startWitness runs vesperwitness serve and returns its URL and process.
func startWitness(t *testing.T, bin, dir, name, addr string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-key", name+".key", "-config", "logs.policy", "-state", name+"-state", "-addr", addr)
	cmd.Dir = dir
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("witness %s did not start: %s", name, stderr.String())
	}
	m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("witness said %q", sc.Text())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return m[1], cmd
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func stopProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// TestWitnessedLog: a vetting log whose checkpoints need 2 of 3
// vesperwitness cosignatures publishes with one witness down, answers 503
// (and hangs nothing) with two down, and recovers when one comes back.
// Receipts carry the cosignatures and verify under the published policy.
// It runs on each backend.
func TestWitnessedLog(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testWitnessedLog(t, be, server, cli, wbin) })
}

func testWitnessedLog(t *testing.T, be *backend, server, cli, wbin string) {
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	// The log's key comes from a first start.
	first := be.start(t, server, dir)
	vkey := first.vkey
	first.stop(t)

	var urls, vkeys []string
	var procs []*exec.Cmd
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("w%d", i)
		out, err := exec.Command(wbin, "keygen", "-name", "witness.test/"+name, "-out", filepath.Join(dir, name+".key")).Output()
		if err != nil {
			t.Fatal(err)
		}
		vkeys = append(vkeys, regexp.MustCompile(`vkey: (\S+)`).FindStringSubmatch(string(out))[1])
		if i == 1 {
			if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), vkey).CombinedOutput(); err != nil {
				t.Fatalf("add-log: %v %s", err, out)
			}
		}
		u, p := startWitness(t, wbin, dir, name, "127.0.0.1:0")
		urls, procs = append(urls, u), append(procs, p)
	}
	var pol strings.Builder
	for i := range urls {
		fmt.Fprintf(&pol, "witness w%d %s %s\n", i+1, vkeys[i], urls[i])
	}
	pol.WriteString("group g 2 w1 w2 w3\nquorum g\n")
	os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(pol.String()), 0o644)

	stopProcess(t, procs[2]) // w3 is down from the start
	srv := be.start(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "4s")
	run(0, "keygen", "agent", "-out", "va.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "va")
	d1 := strings.Repeat("A", 42) + "E"
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d1, "-out", "r1.jwt")
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	out := run(0, "verify-receipt", "-trust", "trust.json", "r1.jwt")
	if !strings.Contains(out, `quorum "g" met by w1, w2`) {
		t.Fatalf("receipt's witness check: %s", out)
	}
	// Without the witnesses in the trust, the same receipt still verifies
	// its log signature; with a policy asking for w3, it does not.
	os.WriteFile(filepath.Join(dir, "w3only.policy"), []byte(fmt.Sprintf("log %s\nwitness w3 %s\nquorum w3\n", vkey, vkeys[2])), 0o644)
	fetch(t, srv.url+"/.well-known/jwks.json", filepath.Join(dir, "jwks.json"))
	if out := run(1, "verify-receipt", "-log-vkey", vkey, "-jwks", "jwks.json", "-policy", "w3only.policy", "r1.jwt"); !strings.Contains(out, "quorum") {
		t.Fatalf("w3-only policy: %s", out)
	}

	// The witness serves what it cosigned.
	h := sha256.Sum256([]byte("e2e.test/vetting"))
	resp, err := http.Get(urls[0] + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("witness monitoring read: %v %v", err, resp)
	}
	resp.Body.Close()

	// Two down: no quorum, so no checkpoint; the submission is refused in time.
	w2addr := strings.TrimPrefix(urls[1], "http://")
	stopProcess(t, procs[1])
	d2 := strings.Repeat("B", 42) + "E"
	start := time.Now()
	out = run(1, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d2)
	if !strings.Contains(out, "503") || !strings.Contains(out, "witnesses") || time.Since(start) > 20*time.Second {
		t.Fatalf("submission without quorum, after %s: %s", time.Since(start), out)
	}
	// And says why, in its metrics: failed witness requests.
	resp, err = http.Get(srv.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^tessera_appender_witness_requests_total\{error_type="failed"[^}]*\} [1-9]`).Match(metrics) {
		t.Fatalf("no failed witness requests in /metrics:\n%s", grepLines(string(metrics), "witness"))
	}
	// The labelled gauges show the vetting log's entry integrated but not published.
	gauge := func(name string) string {
		m := regexp.MustCompile(`(?m)^vesperlog_log_` + name + `\{log="vetting"[^}]*\} (\d+)$`).FindSubmatch(metrics)
		if m == nil {
			t.Fatalf("no %s gauge for the vetting log:\n%s", name, grepLines(string(metrics), "vesperlog_log"))
		}
		return string(m[1])
	}
	if integrated, published := gauge("integrated_size"), gauge("published_size"); integrated != "2" || published != "1" {
		t.Fatalf("vetting log integrated %s, published %s; want 2 and 1", integrated, published)
	}

	// w2 comes back with its state: the pending entry gets published.
	startWitness(t, wbin, dir, "w2", w2addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(cli, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d2, "-out", "r2.jwt")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err == nil {
			if !strings.Contains(string(out), "already logged at index 1") {
				t.Fatalf("after recovery: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log did not recover after a witness came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	run(0, "verify-receipt", "-trust", "trust.json", "-digest", d2, "r2.jwt")
}

// TestFeeder: vesperwitness feed pushes a log that does not ask witnesses
// (a vesperlog without a witness policy) to a vesperwitness, which cosigns
// it, first from nothing and then with a consistency proof.
func TestFeeder(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	srv := startServer(t, server, dir)
	run(0, "keygen", "agent", "-out", "va.jwk")
	run(0, "agents", "add", "-agents", "data/agents.json", "-name", "va", "-key", "va.pub.jwk")
	for _, d := range []string{"A", "B", "C"} {
		run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat(d, 42)+"E")
	}
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/feed", "-out", filepath.Join(dir, "w.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	wvkey := regexp.MustCompile(`vkey: (\S+)`).FindStringSubmatch(string(out))[1]
	if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), srv.vkey).CombinedOutput(); err != nil {
		t.Fatalf("add-log: %v %s", err, out)
	}
	wurl, _ := startWitness(t, wbin, dir, "w", "127.0.0.1:0")
	feed := func() string {
		cmd := exec.Command(wbin, "feed", "-once", "-log-url", srv.url+"/vetting", "-log-vkey", srv.vkey, "-witness-url", wurl, "-witness-vkey", wvkey)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("feed: %v\n%s", err, out)
		}
		return string(out)
	}
	if got := feed(); !strings.Contains(got, "e2e.test/vetting\n3\n") || !strings.Contains(got, "— witness.test/feed ") {
		t.Fatalf("first feed:\n%s", got)
	}
	for _, d := range []string{"D", "E"} {
		run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat(d, 42)+"E")
	}
	// A new feeder process starts from old 0, learns 3 from the 409, and proves 3 to 5.
	if got := feed(); !strings.Contains(got, "e2e.test/vetting\n5\n") {
		t.Fatalf("second feed:\n%s", got)
	}
	// A monitor compares the log's view with the witness's.
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("F", 42)+"E")
	if out := run(0, "compare", "-trust", "trust.json", "-witness", wurl); !strings.Contains(out, "the log is at size 6, the witness at 5") {
		t.Fatalf("compare: %s", out)
	}
}
