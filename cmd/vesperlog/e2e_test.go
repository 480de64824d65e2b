package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/log/vetting"
)

// binaries builds vesperlog and vesper once per test binary.
func binaries(t *testing.T) (server, cli string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/vesperlog/vesperlog/cmd/vesperlog", "github.com/vesperlog/vesperlog/cmd/vesper").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vesperlog"), filepath.Join(dir, "vesper")
}

// running is a vesperlog process started by the test.
type running struct {
	cmd    *exec.Cmd
	url    string
	vkey   string
	stderr *lockedBuffer
}

// lockedBuffer is a process's stderr, which exec's copier writes while
// a test reads it.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

var announceRE = regexp.MustCompile(`(?m)^vesperlog listening on (\S+)$`)

func startServer(t *testing.T, bin, dir string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-data", "data", "-vetting-origin", "e2e.test/vetting", "-checkpoint-interval", "200ms"}, args...)...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("vesperlog stderr:\n%s", r.stderr)
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var announced strings.Builder
	deadline := time.After(30 * time.Second)
	for !strings.Contains(announced.String(), "agents:  ") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("vesperlog exited before announcing itself:\n%s\n%s", announced.String(), r.stderr)
			}
			announced.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("vesperlog did not start:\n%s", r.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	m := announceRE.FindStringSubmatch(announced.String())
	vk := regexp.MustCompile(`(?m)^vetting log vkey:\s+(\S+)$`).FindStringSubmatch(announced.String())
	if m == nil || vk == nil {
		t.Fatalf("unexpected announcement:\n%s", announced.String())
	}
	r.url, r.vkey = m[1], vk[1]
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("vesperlog did not exit cleanly: %v\n%s", err, r.stderr)
	}
}

// newAgent makes the vetting agent "va" (va.jwk in dir) and registers it
// in the registry of the posix server started in dir (data/agents.json,
// which the server's first start creates).
func newAgent(t *testing.T, cli, dir string) {
	t.Helper()
	runVesper(t, cli, dir, 0, "keygen", "agent", "-out", "va.jwk")
	runVesper(t, cli, dir, 0, "agents", "add", "-agents", "data/agents.json", "-name", "va", "-key", "va.pub.jwk")
}

// runVesper runs the command line in dir and returns its output; it fails the
// test unless the exit code is want.
func runVesper(t *testing.T, bin, dir string, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("vesper %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
	}
	if want != 0 && strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 && want == 1 {
		t.Errorf("vesper %s: error is not one line: %q", strings.Join(args, " "), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// TestEndToEnd runs on each backend: submit, batch, dedup, receipts
// verified offline, an independent check of the served log, and a restart
// (on aws: the process stops and starts again on the same database and
// bucket) after which everything is still there.
func TestEndToEnd(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testEndToEnd(t, be, server, cli) })
}

func testEndToEnd(t *testing.T, be *backend, server, cli string) {
	dir := t.TempDir()
	srv := be.start(t, server, dir)

	// A vetting agent gets a key; the operator registers it.
	runVesper(t, cli, dir, 0, "keygen", "agent", "-out", "va.jwk")
	runVesper(t, cli, dir, 0, "keygen", "agent", "-alg", "EdDSA", "-out", "va2.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va2", "-key", "va2.pub.jwk")
	waitAgents(t, srv.url, "va", "va2")
	if fi, err := os.Stat(filepath.Join(dir, "va.jwk")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent private key mode: %v %v", fi.Mode(), err)
	}

	// It commits to a KYC record and logs the commitment.
	os.WriteFile(filepath.Join(dir, "kyc.json"), []byte(`{"legal_name":"Business 42 LLC"}`), 0o644)
	digest := strings.TrimSpace(runVesper(t, cli, dir, 0, "kyc-hash", "-in", "kyc.json", "-out", "commitment.json"))
	if again := strings.TrimSpace(runVesper(t, cli, dir, 0, "kyc-hash", "-in", "kyc.json", "-salt", saltOf(t, dir))); again != digest {
		t.Fatalf("recomputed commitment %s, want %s", again, digest)
	}
	out := runVesper(t, cli, dir, 0, "submit", "-server", srv.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "receipt.jwt")
	if !strings.Contains(out, "logged at index 0") {
		t.Fatalf("submit: %s", out)
	}

	// A batch from the other agent.
	var lines []string
	for i := 0; i < 300; i++ {
		d := make([]byte, 32)
		copy(d, fmt.Sprintf("batch digest %d", i))
		lines = append(lines, base64.RawURLEncoding.EncodeToString(d)+fmt.Sprintf(" entity-%d", i))
	}
	os.WriteFile(filepath.Join(dir, "digests.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out = runVesper(t, cli, dir, 0, "submit", "-server", srv.url, "-key", "va2.jwk", "-digests", "digests.txt", "-json")
	if n := strings.Count(out, `"receipt":"`); n != 300 {
		t.Fatalf("batch: %d receipts in\n%.500s", n, out)
	}

	// A verifier pins the configuration and checks the receipt offline.
	runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust.json")
	fetch(t, srv.url+"/vetting/v1/agents", filepath.Join(dir, "agents.json"))
	fetch(t, srv.url+"/.well-known/jwks.json", filepath.Join(dir, "jwks.json"))
	out = runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust.json", "-agents", "agents.json", "-digest", digest, "receipt.jwt")
	for _, want := range []string{"receipt OK: entry 0 of e2e.test/vetting", "agent signature", "inclusion: entry 0", "sub           Business_42"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify-receipt output lacks %q:\n%s", want, out)
		}
	}
	runVesper(t, cli, dir, 0, "verify-receipt", "-log-vkey", srv.vkey, "-jwks", "jwks.json", "receipt.jwt")
	runVesper(t, cli, dir, 1, "verify-receipt", "-trust", "trust.json", "-digest", strings.Repeat("A", 43), "receipt.jwt")
	rc, _ := os.ReadFile(filepath.Join(dir, "receipt.jwt"))
	os.WriteFile(filepath.Join(dir, "tampered.jwt"), bytes.Replace(rc, []byte("."), []byte(".A"), 1), 0o644)
	if out := runVesper(t, cli, dir, 1, "verify-receipt", "-trust", "trust.json", "tampered.jwt"); !strings.Contains(out, "receipt does not verify") {
		t.Errorf("tampered receipt: %s", out)
	}

	independentCheck(t, srv.url+"/vetting/", srv.vkey, filepath.Join(dir, "agents.json"), 301)

	// Restart: the log, its keys and the dedup index survive.
	jwksBefore, _ := os.ReadFile(filepath.Join(dir, "jwks.json"))
	srv.stop(t)
	srv2 := be.start(t, server, dir)
	if srv2.vkey != srv.vkey {
		t.Fatalf("vkey changed across restart: %s, then %s", srv.vkey, srv2.vkey)
	}
	fetch(t, srv2.url+"/.well-known/jwks.json", filepath.Join(dir, "jwks2.json"))
	if jwksAfter, _ := os.ReadFile(filepath.Join(dir, "jwks2.json")); !bytes.Equal(jwksBefore, jwksAfter) {
		t.Fatalf("receipt keys changed across restart")
	}
	out = runVesper(t, cli, dir, 0, "submit", "-server", srv2.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "receipt2.jwt")
	if !strings.Contains(out, "already logged at index 0") {
		t.Fatalf("resubmission after restart: %s", out)
	}
	runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust.json", "-digest", digest, "receipt2.jwt")
	runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust.json", "receipt.jwt")
	independentCheck(t, srv2.url+"/vetting/", srv2.vkey, filepath.Join(dir, "agents.json"), 301)
}

func saltOf(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "commitment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Salt string }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Salt
}

func fetch(t *testing.T, url, path string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// servedLog fetches the log served at prefix as a stranger would: its
// checkpoint, verified with vkey, and a proof builder over its tiles.
func servedLog(t *testing.T, prefix, vkey string) (*tclient.HTTPFetcher, *fmtlog.Checkpoint, *tclient.ProofBuilder) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(prefix)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tclient.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := tclient.FetchCheckpoint(ctx, f.ReadCheckpoint, v, v.Name())
	if err != nil {
		t.Fatalf("checkpoint from %s: %v", prefix, err)
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	return f, cp, pb
}

// independentCheck reads the served log as a stranger would: it verifies
// the checkpoint, proves every entry's inclusion with Tessera's client
// against the served tiles, checks every leaf's agent signature, and has
// golang.org/x/mod/sumdb/tlog recompute the root from the entries.
func independentCheck(t *testing.T, prefix, vkey, agentsFile string, wantSize uint64) {
	t.Helper()
	ctx := context.Background()
	f, cp, pb := servedLog(t, prefix, vkey)
	if cp.Size != wantSize {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, wantSize)
	}
	ab, _ := os.ReadFile(agentsFile)
	agents, err := vetting.ParseAgents(ab)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i := uint64(0); i < cp.Size; i++ {
		b, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, i/256, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		e := b.Entries[i%256]
		leaf, err := vetting.ParseLeaf(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		agent, err := agents.Lookup(leaf.AgentKey)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if err := leaf.Verify(&jose.JSONWebKey{Key: agent.Key.Key}); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(e), p, cp.Hash); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(cp.Size), hr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root[:], cp.Hash) {
		t.Fatalf("sumdb/tlog computes root %x, the checkpoint says %x", root, cp.Hash)
	}
}

// TestDataDirLocked: a second server on the same data directory refuses to
// start rather than race the first for its keys and log.
func TestDataDirLocked(t *testing.T) {
	bin, _ := binaries(t)
	dir := t.TempDir()
	srv := startServer(t, bin, dir)
	out, err := exec.Command(bin, "-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "data")).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second server on one data directory: %v\n%s", err, out)
	}
	srv.stop(t)
}
