package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/cmd/internal/cli/clitest"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// errUsage matches the error run returns for exit 2.
var errUsage = errors.New("usage")

// exitError is a run that exited non-zero, with its standard error.
type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string        { return e.stderr }
func (e *exitError) Is(target error) bool { return target == errUsage && e.code == 2 }

// run runs vesperwitness with args, as main does.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	var stderr bytes.Buffer
	if code := program.Run(ctx, args, stdout, &stderr); code != 0 {
		return &exitError{code, stderr.String()}
	}
	return nil
}

// TestHelp: every command prints its synopsis and all its flags on -h,
// exit 0 (serve's and feed's included); an unknown flag is one line, exit 2.
func TestHelp(t *testing.T) { clitest.CheckHelp(t, program) }

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	key := filepath.Join(dir, "w.key")
	if err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", key}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cosignature/v1 vkey: witness.test/w+") {
		t.Fatalf("keygen said %q", out.String())
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	if err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", key}, &out); err == nil {
		t.Fatal("keygen overwrote a key")
	}

	cfg := filepath.Join(dir, "logs.policy")
	_, vkey, _ := note.GenerateKey(rand.Reader, "example.test/log")
	_, vkey2, _ := note.GenerateKey(rand.Reader, "example.test/other")
	for _, v := range []string{vkey, vkey2} {
		if err := run(ctx, []string{"add-log", "-config", cfg, v}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(ctx, []string{"add-log", "-config", cfg, vkey}, &out); err == nil {
		t.Fatal("the same log added twice")
	}
	if err := run(ctx, []string{"add-log", "-config", cfg, "not-a-key"}, &out); err == nil {
		t.Fatal("a malformed vkey added")
	}
	out.Reset()
	if err := run(ctx, []string{"list-logs", "-config", cfg}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "example.test/log\t"+vkey) || !strings.Contains(out.String(), "example.test/other\t") {
		t.Fatalf("list-logs: %q", out.String())
	}
	// A logs file is logs only: a policy with witnesses is refused.
	os.WriteFile(cfg, []byte("log "+vkey+"\nwitness w "+"witness.test/w+00000000+BAAA\nquorum w\n"), 0o644)
	if err := run(ctx, []string{"list-logs", "-config", cfg}, &out); err == nil {
		t.Fatal("a policy with witnesses accepted as a logs file")
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve"}, {"feed"}, {"keygen"}} {
		if err := run(ctx, args, &out); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// TestKeygenAlg: keygen makes either kind of key, mode 0600, and prints its
// vkey under a label that says which; -h and the usage name -alg.
func TestKeygenAlg(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for _, c := range []struct{ alg, label, typ string }{
		{"", "cosignature/v1 vkey: ", "\x04"}, // the default
		{"ed25519", "cosignature/v1 vkey: ", "\x04"},
		{"ml-dsa-44", "ml-dsa-44 vkey: ", "\x06"},
	} {
		key := filepath.Join(dir, "w"+c.alg+".key")
		args := []string{"keygen", "-name", "witness.test/w", "-out", key}
		if c.alg != "" {
			args = append(args, "-alg", c.alg)
		}
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatal(err)
		}
		_, vkey, ok := strings.Cut(out.String(), "\n"+c.label)
		vkey = strings.TrimSuffix(vkey, "\n")
		if !ok {
			t.Fatalf("keygen -alg %q said %q", c.alg, out.String())
		}
		if _, err := policy.NewWitnessVerifier(vkey); err != nil {
			t.Fatalf("keygen -alg %q vkey: %v", c.alg, err)
		}
		if raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2]); string(raw[:1]) != c.typ {
			t.Fatalf("keygen -alg %q made a vkey of type %x", c.alg, raw[:1])
		}
		if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v", fi.Mode())
		}
	}
	err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", filepath.Join(dir, "x.key"), "-alg", "rsa"}, io.Discard)
	if !errors.Is(err, errUsage) {
		t.Fatalf("-alg rsa: %v, want a usage error", err)
	}
	var help bytes.Buffer
	if err := run(ctx, []string{"keygen", "-h"}, &help); err != nil {
		t.Fatalf("keygen -h: %v", err)
	}
	if !strings.Contains(help.String(), "keygen -name NAME -out FILE [-alg ed25519|ml-dsa-44]") || !strings.Contains(help.String(), "  -alg string") {
		t.Fatalf("usage does not show -alg:\n%s", help.String())
	}
}

// TestServe runs serve with each kind of key: it cosigns a log's
// checkpoints, the cosignatures verify with witness/policy under a policy
// that needs this witness, and it refuses inconsistent checkpoints.
func TestServe(t *testing.T) {
	for _, alg := range []string{"ed25519", "ml-dsa-44"} {
		t.Run(alg, func(t *testing.T) { testServe(t, alg) })
	}
}

func testServe(t *testing.T, alg string) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key, cfg := filepath.Join(dir, "w.key"), filepath.Join(dir, "logs.policy")
	var out bytes.Buffer
	if err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", key, "-alg", alg}, &out); err != nil {
		t.Fatal(err)
	}
	l := newLog(t, "example.test/log")
	if err := run(ctx, []string{"add-log", "-config", cfg, l.vkey}, &out); err != nil {
		t.Fatal(err)
	}

	// A key others can read is refused.
	os.Chmod(key, 0o644)
	if err := run(ctx, []string{"serve", "-key", key, "-config", cfg, "-state", filepath.Join(dir, "state"), "-addr", "127.0.0.1:0"}, io.Discard); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("serve with a key of mode 0644: %v", err)
	}
	os.Chmod(key, 0o600)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-key", key, "-config", cfg, "-state", filepath.Join(dir, "state"), "-addr", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var said []string
	for len(said) < 3 && sc.Scan() {
		said = append(said, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	if len(said) < 3 {
		t.Fatalf("serve said %q: %v", said, <-done)
	}
	url := strings.TrimPrefix(said[0], "vesperwitness listening on ")
	_, vkey, _ := strings.Cut(said[1], " vkey: ")
	if !strings.Contains(out.String(), vkey) || vkey == "" {
		t.Fatalf("serve printed %q, keygen %q", said[1], out.String())
	}
	p, err := policy.Parse([]byte("log " + l.vkey + "\nwitness w " + vkey + "\nquorum w\n"))
	if err != nil {
		t.Fatal(err)
	}

	post := func(old int64, proof []tlog.Hash, cp []byte) (int, []byte) {
		b := fmt.Sprintf("old %d\n", old)
		for _, h := range proof {
			b += base64.StdEncoding.EncodeToString(h[:]) + "\n"
		}
		resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(b+"\n"+string(cp)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	cosigned := func(cp, answer []byte) {
		t.Helper()
		c, err := p.Verify(append(append([]byte(nil), cp...), answer...))
		if err != nil || len(c.Cosigners) != 1 {
			t.Fatalf("the cosignature does not verify under %q: %v", p.String(), err)
		}
	}
	l.grow(t, 3)
	cp3 := l.checkpoint(t, 3, l.root(t, 3))
	if status, answer := post(0, nil, cp3); status != 200 {
		t.Fatalf("first checkpoint: %d %s", status, answer)
	} else {
		cosigned(cp3, answer)
	}
	l.grow(t, 2)
	cp5 := l.checkpoint(t, 5, l.root(t, 5))
	if status, answer := post(3, l.proof(t, 3, 5), cp5); status != 200 {
		t.Fatalf("consistent growth: %d %s", status, answer)
	} else {
		cosigned(cp5, answer)
	}
	// Inconsistent: another root at the same size, a bad proof, a rollback.
	if status, answer := post(5, nil, l.checkpoint(t, 5, l.root(t, 4))); status != 422 {
		t.Fatalf("same size, another root: %d %s", status, answer)
	}
	l.grow(t, 1)
	if status, answer := post(5, l.proof(t, 4, 6), l.checkpoint(t, 6, l.root(t, 6))); status != 422 {
		t.Fatalf("a bad proof: %d %s", status, answer)
	}
	if status, answer := post(3, nil, cp3); status != 409 || string(answer) != "5\n" {
		t.Fatalf("a rollback: %d %q", status, answer)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// testLog is a log built with golang.org/x/mod/sumdb/tlog and note.
type testLog struct {
	origin, vkey string
	signer       note.Signer
	hashes       []tlog.Hash
	n            int64
}

func newLog(t *testing.T, origin string) *testLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	return &testLog{origin: origin, vkey: vkey, signer: s}
}

func (l *testLog) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *testLog) grow(t *testing.T, k int) {
	for ; k > 0; k-- {
		hs, err := tlog.StoredHashes(l.n, []byte(fmt.Sprint("entry ", l.n)), tlog.HashReaderFunc(l.read))
		if err != nil {
			t.Fatal(err)
		}
		l.hashes, l.n = append(l.hashes, hs...), l.n+1
	}
}

func (l *testLog) root(t *testing.T, n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *testLog) proof(t *testing.T, old, n int64) []tlog.Hash {
	p, err := tlog.ProveTree(n, old, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *testLog) checkpoint(t *testing.T, n int64, root tlog.Hash) []byte {
	b, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
