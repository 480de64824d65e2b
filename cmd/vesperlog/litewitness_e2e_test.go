package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"

	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
)

// interopTool finds an independent implementation installed by .ci/run,
// skipping the test where it is not installed, unless VESPER_INTEROP=1
// (as in CI) makes that a failure.
func interopTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("VESPER_INTEROP") == "1" {
		t.Fatalf("%s is not installed (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed; run .ci/run or set VESPER_INTEROP=1 to require it", name)
	return ""
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func must(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// TestLitewitness: both logs get their checkpoints cosigned by litewitness
// (filippo.io/torchwood), an independent tlog-witness, under one policy,
// and the receipts carry that cosignature and verify under the published
// policy. litewitness verifies checkpoints with x/mod/sumdb/note, which
// refuses the STI-CT log's RFC 6962 key: it is given the log's Ed25519
// note key, whose signature every STI-CT checkpoint also carries.
func TestLitewitness(t *testing.T) {
	lw := interopTool(t, "litewitness")
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen", "sqlite3"} {
		interopTool(t, tool)
	}
	server, cli := binaries(t)
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	// The logs' keys, from a first start.
	pki := stictPKI(t, dir)
	const stictOrigin = "e2e.test/stict"
	first, _ := startSTICT(t, server, dir, "-stict-origin", stictOrigin)
	vkey := first.vkey
	_, lc := stictConfiguration(t, first.url)
	first.stop(t)
	if name, _, _ := strings.Cut(lc.NoteVKey, "+"); name != stictOrigin {
		t.Fatalf("the STI-CT log's note_vkey %q is not named by its origin", lc.NoteVKey)
	}

	// litewitness keeps its key in a dedicated ssh-agent.
	sock := filepath.Join(dir, "lw.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	must(t, exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lw", "-f", filepath.Join(dir, "lw.pem")))
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", filepath.Join(dir, "lw.pem"))
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err == nil {
			break
		} else if i > 50 {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pubLine, _ := os.ReadFile(filepath.Join(dir, "lw.pem.pub"))
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := ssh.FingerprintSHA256(pk)
	edPub := ed25519.PublicKey(pk.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey))
	v1, err := note.NewEd25519VerifierKey("witness.test/lite", edPub)
	if err != nil {
		t.Fatal(err)
	}
	wvkey, err := fnote.VKeyToCosignatureV1(v1)
	if err != nil {
		t.Fatal(err)
	}

	db := filepath.Join(dir, "lw.db")
	addr := freeAddr(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(lw, "-name", "witness.test/lite", "-key", fingerprint, "-ssh-agent", sock, "-db", db, "-listen", addr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("litewitness stderr:\n%s", stderr.String())
			}
		})
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return cmd
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("litewitness did not start")
		return nil
	}
	// litewitness makes its database on start; the log is a row in it.
	lwProc := start()
	_ = lwProc.Process.Kill()
	_ = lwProc.Wait()
	emptyRoot := base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.EmptyRoot())
	for _, k := range []string{vkey, lc.NoteVKey} {
		origin, _, _ := strings.Cut(k, "+")
		must(t, exec.Command("sqlite3", db,
			fmt.Sprintf("INSERT INTO log (origin, tree_size, tree_hash) VALUES ('%s', 0, '%s'); INSERT INTO key (origin, key) VALUES ('%s', '%s');", origin, emptyRoot, origin, k)))
	}
	start()

	os.WriteFile(filepath.Join(dir, "lite.policy"), []byte(fmt.Sprintf("witness lite %s http://%s\nquorum lite\n", wvkey, addr)), 0o644)
	srv, _ := startSTICT(t, server, dir, "-witness-policy", "lite.policy", "-publish-timeout", "10s")
	newAgent(t, cli, dir)
	for i, d := range []string{"A", "B"} {
		run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat(d, 42)+"E", "-out", fmt.Sprintf("r%d.jwt", i))
	}
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	for i := range 2 {
		out := run(0, "verify-receipt", "-trust", "trust.json", fmt.Sprintf("r%d.jwt", i))
		if !strings.Contains(out, `quorum "lite" met by lite`) {
			t.Fatalf("receipt %d: %s", i, out)
		}
	}

	// The STI-CT log: an SCT means a published checkpoint met the quorum.
	addChain(t, srv.url+"/stict/v1/", pki.Chain(pki.TN), false)
	var rr stictserver.ReceiptResponse
	if err := json.Unmarshal(httpGet200(t, srv.url+"/stict/v1/receipt/0"), &rr); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stict.jwt"), []byte(rr.Receipt), 0o644)
	if out := run(0, "verify-receipt", "-trust", "trust.json", "stict.jwt"); !strings.Contains(out, "entry 0 of "+stictOrigin) || !strings.Contains(out, `quorum "lite" met by lite`) {
		t.Fatalf("STI-CT receipt: %s", out)
	}
	// Its checkpoint verifies with x/mod/sumdb/note and the note key alone,
	// as any C2SP witness or client checks it.
	nv, err := note.NewVerifier(lc.NoteVKey)
	if err != nil {
		t.Fatal(err)
	}
	cp := httpGet200(t, srv.url+"/stict/checkpoint")
	if n, err := note.Open(cp, note.VerifierList(nv)); err != nil || len(n.Sigs) != 1 || !strings.HasPrefix(n.Text, stictOrigin+"\n") {
		t.Fatalf("STI-CT checkpoint under x/mod/sumdb/note with the note key: %v\n%s", err, cp)
	}
}
