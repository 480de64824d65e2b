package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
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

// startWitnesses makes a vesperwitness key of each algorithm in dir (w1,
// w2, ... as witness.test/w1, ...), has them witness the log whose vkey is
// logVKey, starts them, and writes dir/witnesses.policy: the witnesses
// with their URLs, and 2 of them as the quorum. It returns their URLs,
// vkeys and processes.
func startWitnesses(t *testing.T, wbin, dir, logVKey string, algs ...string) (urls, vkeys []string, procs []*exec.Cmd) {
	t.Helper()
	if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), logVKey).CombinedOutput(); err != nil {
		t.Fatalf("add-log: %v %s", err, out)
	}
	var pol, names strings.Builder
	for i, alg := range algs {
		name := fmt.Sprintf("w%d", i+1)
		out, err := exec.Command(wbin, "keygen", "-name", "witness.test/"+name, "-out", filepath.Join(dir, name+".key"), "-alg", alg).Output()
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^(cosignature/v1|ml-dsa-44) vkey: (\S+)$`).FindStringSubmatch(string(out))
		if m == nil || (m[1] == "ml-dsa-44") != (alg == "ml-dsa-44") {
			t.Fatalf("keygen -alg %s said %q", alg, out)
		}
		u, p := startWitness(t, wbin, dir, name, "127.0.0.1:0")
		urls, vkeys, procs = append(urls, u), append(vkeys, m[2]), append(procs, p)
		fmt.Fprintf(&pol, "witness %s %s %s\n", name, m[2], u)
		names.WriteString(" " + name)
	}
	fmt.Fprintf(&pol, "group g 2%s\nquorum g\n", names.String())
	if err := os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(pol.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return urls, vkeys, procs
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

	urls, vkeys, procs := startWitnesses(t, wbin, dir, vkey, "ed25519", "ed25519", "ed25519")
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
	// It names the witnesses that did not answer, and why.
	if !strings.Contains(out, "503") || !strings.Contains(out, "witness w2 ("+urls[1]+") did not answer") ||
		!strings.Contains(out, "connection refused") || time.Since(start) > 20*time.Second {
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

// TestWitnessedLogMLDSA: a vetting log whose checkpoints need 2 of 3
// witnesses, two Ed25519 vesperwitnesses and one ML-DSA-44 vesperwitness,
// with an Ed25519 one down from the start, so that no checkpoint is
// published without the ML-DSA one: Tessera asks it, checks its answer and
// publishes. The served checkpoint carries its cosignature, and receipts
// (and a token made from one) verify offline against the trust document
// the server publishes.
func TestWitnessedLogMLDSA(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	be := newBackend(t, storage.POSIX)
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	first := be.start(t, server, dir)
	vkey := first.vkey
	first.stop(t)
	urls, vkeys, procs := startWitnesses(t, wbin, dir, vkey, "ed25519", "ed25519", "ml-dsa-44")
	stopProcess(t, procs[1]) // w2 is down: the quorum is w1 and the ML-DSA w3
	srv := be.start(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "10s")
	run(0, "keygen", "agent", "-out", "va.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk", "-iss", "https://va.example")
	waitAgents(t, srv.url, "va")

	os.WriteFile(filepath.Join(dir, "kyc.json"), []byte(`{"legal_name":"Business 42 LLC"}`), 0o644)
	digest := strings.TrimSpace(run(0, "kyc-hash", "-in", "kyc.json", "-out", "commitment.json"))
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "r0.jwt")
	digests := []string{digest}
	for i, d := range []string{"A", "B"} {
		digests = append(digests, strings.Repeat(d, 42)+"E")
		run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", digests[i+1], "-out", fmt.Sprintf("r%d.jwt", i+1))
	}

	// The trust document publishes the ML-DSA witness, and every receipt
	// verifies offline against it, w3 counting toward the quorum.
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	tb, _ := os.ReadFile(filepath.Join(dir, "trust.json"))
	conf, err := receipts.ParseConfiguration(tb)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf.WitnessPolicy, "witness w3 "+vkeys[2]) {
		t.Fatalf("the published policy lacks the ML-DSA witness:\n%s", conf.WitnessPolicy)
	}
	for i, d := range digests {
		out := run(0, "verify-receipt", "-trust", "trust.json", "-digest", d, fmt.Sprintf("r%d.jwt", i))
		if !strings.Contains(out, `quorum "g" met by w1, w3`) {
			t.Fatalf("receipt %d's witness check: %s", i, out)
		}
	}
	fetch(t, srv.url+"/vetting/v1/agents", filepath.Join(dir, "issuers.json"))
	run(0, "token", "issue", "-key", "va.jwk", "-iss", "https://va.example", "-sub", "Business_42", "-commitment", "commitment.json", "-receipt", "r0.jwt", "-out", "token.sdjwt")
	run(0, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "token.sdjwt")
	// The receipt meets a policy of w3 alone, and not one where another
	// ML-DSA-44 key has w3's name.
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w3", "-out", filepath.Join(dir, "w3-other.key"), "-alg", "ml-dsa-44").Output()
	if err != nil {
		t.Fatal(err)
	}
	otherVKey := regexp.MustCompile(`ml-dsa-44 vkey: (\S+)`).FindSubmatch(out)[1]
	w3only := fmt.Sprintf("log %s\nwitness w3 %s\nquorum w3\n", vkey, vkeys[2])
	os.WriteFile(filepath.Join(dir, "w3only.policy"), []byte(w3only), 0o644)
	os.WriteFile(filepath.Join(dir, "w3other.policy"), []byte(fmt.Sprintf("log %s\nwitness w3 %s\nquorum w3\n", vkey, otherVKey)), 0o644)
	fetch(t, srv.url+"/.well-known/jwks.json", filepath.Join(dir, "jwks.json"))
	run(0, "verify-receipt", "-log-vkey", vkey, "-jwks", "jwks.json", "-policy", "w3only.policy", "r1.jwt")
	if out := run(1, "verify-receipt", "-log-vkey", vkey, "-jwks", "jwks.json", "-policy", "w3other.policy", "r1.jwt"); !strings.Contains(out, "quorum") {
		t.Fatalf("w3's cosignature under another key: %s", out)
	}

	// The served checkpoint carries w3's ML-DSA-44 cosignature (key ID,
	// timestamp and a 2420-byte signature), which verifies under the
	// published policy; the client's checkpoint command agrees.
	resp, err := http.Get(srv.url + "/vetting/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	cpBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p, err := policy.Parse([]byte(conf.WitnessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := p.Verify(cpBytes)
	if err != nil || cp.Size != 3 || !slices.Contains(cp.Cosigners, "w3") {
		t.Fatalf("served checkpoint: %v, %v\n%s", cp, err, cpBytes)
	}
	line := regexp.MustCompile(`(?m)^— witness.test/w3 (\S+)$`).FindSubmatch(cpBytes)
	if sig, err := base64.StdEncoding.DecodeString(string(line[1])); err != nil || len(sig) != 4+8+2420 {
		t.Fatalf("w3's cosignature is %d bytes (%v), want 4+8+2420", len(sig), err)
	}
	if out := run(0, "checkpoint", "-trust", "trust.json"); !strings.Contains(out, "size 3") || !strings.Contains(out, "w3") {
		t.Fatalf("vesper checkpoint: %s", out)
	}
	// And w3 serves what it cosigned, for monitors.
	h := sha256.Sum256([]byte("e2e.test/vetting"))
	resp, err = http.Get(urls[2] + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	wcp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wp, err := policy.Parse([]byte(w3only))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := wp.Verify(wcp); err != nil || c.Size != 3 {
		t.Fatalf("w3's monitoring read: %v, %v\n%s", c, err, wcp)
	}
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
	newAgent(t, cli, dir)
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
