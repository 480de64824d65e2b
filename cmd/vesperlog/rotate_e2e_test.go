package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
)

// TestReceiptKeyRotation runs on each backend, with the real binaries: a
// front end issues receipts, is stopped, its receipt key rotated, started,
// and so twice over. Every receipt of the three keys verifies offline under
// the latest trust document, whose JWKS marks the retired keys with exp; a
// verifier that pinned the trust document before a rotation refuses a
// new receipt (unknown kid) until it fetches the document again. Rotation
// refuses while the server runs; a server refuses a retired key.
func TestReceiptKeyRotation(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testReceiptKeyRotation(t, be, server, cli) })
}

func testReceiptKeyRotation(t *testing.T, be *backend, server, cli string) {
	dir := t.TempDir()
	srv := be.start(t, server, dir)
	runVesper(t, cli, dir, 0, "keygen", "agent", "-out", "va.jwk")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "va")

	var issued []string // receipt files, in order
	issue := func(url string, n int) {
		t.Helper()
		for range n {
			d := make([]byte, 32)
			rand.Read(d)
			f := fmt.Sprintf("receipt-%d.jwt", len(issued))
			out := runVesper(t, cli, dir, 0, "submit", "-server", url, "-key", "va.jwk", "-digest", base64.RawURLEncoding.EncodeToString(d), "-out", f)
			if !strings.Contains(out, fmt.Sprintf("logged at index %d", len(issued))) {
				t.Fatalf("submit: %s", out)
			}
			issued = append(issued, f)
		}
	}
	rotate := append(append([]string{"keys", "rotate-receipt"}, be.flags...), "-data", "data")
	keyFile := filepath.Join(dir, "data", "keys", "receipt-es256.jwk")

	issue(srv.url, 2)
	runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust-0.json")
	if out := runVesper(t, server, dir, 1, rotate...); !strings.Contains(out, "in use by a running server") {
		t.Fatalf("rotating the key of a running server: %s", out)
	}
	// The first key, kept to show that a server refuses it once retired.
	first, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "first.jwk"), first, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)

	// First rotation.
	out := runVesper(t, server, dir, 0, rotate...)
	if !strings.Contains(out, "retired") || !strings.Contains(out, "signing") || strings.Contains(out, `"d"`) {
		t.Fatalf("rotate-receipt: %s", out)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file: %v, %v", fi, err)
	}
	if _, err := os.Stat(keyFile + stagedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the staged key is left behind: %v", err)
	}
	// A run that installed the staged key but stopped before removing it:
	// running again only removes it, and the installed key stays.
	installed, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile+stagedSuffix, installed, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runVesper(t, server, dir, 0, rotate...); !strings.Contains(out, "already done") {
		t.Fatalf("rotate-receipt after a finished rotation: %s", out)
	}
	if now, _ := os.ReadFile(keyFile); string(now) != string(installed) {
		t.Fatal("running rotate-receipt again after a finished rotation rotated again")
	}
	if _, err := os.Stat(keyFile + stagedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the staged key is left behind: %v", err)
	}
	refuseRetired(t, be, server, dir, "first.jwk")
	srv = be.start(t, server, dir)
	issue(srv.url, 2)

	// A verifier that pinned the trust document before the rotation does
	// not know the new key; fetching the document again teaches it.
	if out := runVesper(t, cli, dir, 1, "verify-receipt", "-trust", "trust-0.json", issued[2]); !strings.Contains(out, receipts.ErrUnknownKey.Error()) {
		t.Fatalf("new receipt under the trust pinned before the rotation: %s", out)
	}
	runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust-0.json", issued[0])
	runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust-1.json")
	runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust-1.json", issued[2])
	srv.stop(t)

	// Second rotation.
	runVesper(t, server, dir, 0, rotate...)
	srv = be.start(t, server, dir)
	issue(srv.url, 2)
	out = runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust-2.json")
	if strings.Count(out, " retired, window ") != 2 || strings.Count(out, " current, window ") != 1 {
		t.Fatalf("vesper trust lists:\n%s", out)
	}

	// The history: three keys, windows end to end, the first two retired.
	b, err := os.ReadFile(filepath.Join(dir, "trust-2.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := receipts.ParseConfiguration(b)
	if err != nil {
		t.Fatal(err)
	}
	ks := c.ReceiptKeys.Keys
	if len(ks) != 3 || !ks[0].Retired() || !ks[1].Retired() || ks[2].Retired() ||
		!ks[0].Expires.Equal(ks[1].NotBefore) || !ks[1].Expires.Equal(ks[2].NotBefore) || ks[0].NotBefore.IsZero() {
		t.Fatalf("receipt keys in the trust document:\n%s", b)
	}
	if jwks := string(httpGet200(t, srv.url+"/.well-known/jwks.json")); strings.Count(jwks, `"exp":`) != 2 || strings.Count(jwks, `"nbf":`) != 3 {
		t.Fatalf("JWKS: %s", jwks)
	}

	// Every receipt, from each of the three keys, verifies offline under
	// the latest trust document, each within its key's window.
	for i, f := range issued {
		out := runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust-2.json", f)
		k := ks[i/2]
		state := map[bool]string{true: "retired", false: "current"}[k.Retired()]
		for _, want := range []string{"by trusted key " + k.KeyID, "within the " + state + " key's window " + k.Window()} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: verify-receipt does not say %q:\n%s", f, want, out)
			}
		}
	}

	// A trust document in which the first key's window lies after its
	// receipts were issued refuses them: the window is checked.
	shifted := strings.Replace(string(b), fmt.Sprintf(`"nbf": %d,`, ks[0].NotBefore.Unix()), fmt.Sprintf(`"nbf": %d,`, ks[0].Expires.Unix()+100), 1)
	shifted = strings.Replace(shifted, fmt.Sprintf(`"exp": %d`, ks[0].Expires.Unix()), fmt.Sprintf(`"exp": %d`, ks[0].Expires.Unix()+200), 1)
	if shifted == string(b) {
		t.Fatal("could not shift the first key's window")
	}
	os.WriteFile(filepath.Join(dir, "trust-shifted.json"), []byte(shifted), 0o644)
	if out := runVesper(t, cli, dir, 1, "verify-receipt", "-trust", "trust-shifted.json", issued[0]); !strings.Contains(out, receipts.ErrKeyWindow.Error()) {
		t.Fatalf("a receipt outside its key's window: %s", out)
	}

	if be.name == storage.AWS {
		// A copy of the running server's key rotated elsewhere (another
		// host: no lock is shared) retires it in the backend's history;
		// within a second (state.ReloadEvery) the running server stops
		// signing receipts with it.
		cur, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o700)
		if err := os.WriteFile(filepath.Join(dir, "elsewhere", "copy.jwk"), cur, 0o600); err != nil {
			t.Fatal(err)
		}
		runVesper(t, server, dir, 0, append(append([]string{"keys", "rotate-receipt"}, be.flags...), "-receipt-key", "elsewhere/copy.jwk")...)
		eventually(t, 10*time.Second, "the server refusing to sign with its retired key", func() (bool, string) {
			d := make([]byte, 32)
			rand.Read(d)
			cmd := exec.Command(cli, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", base64.RawURLEncoding.EncodeToString(d))
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			// A 503 that says why: another front end can answer.
			return err != nil && strings.Contains(string(out), "(HTTP 503)") && strings.Contains(string(out), "restart this front end with its new key"), string(out)
		})
		srv.stop(t)
		if !strings.Contains(srv.stderr.String(), "not signing a receipt with key") || !strings.Contains(srv.stderr.String(), "retired") {
			t.Fatalf("the server's log does not say why it refused to sign:\n%s", srv.stderr)
		}
		return
	}
	srv.stop(t)
}

// refuseRetired checks that vesperlog refuses to start with a receipt key
// the history has retired, with a one-line error that says what to do.
func refuseRetired(t *testing.T, be *backend, server, dir, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, server, be.serverArgs("-addr", "127.0.0.1:0", "-data", "data", "-vetting-origin", "e2e.test/vetting", "-receipt-key", key)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.HasPrefix(last, "vesperlog: ") ||
		!strings.Contains(last, "retired") || !strings.Contains(last, "vesperlog keys rotate-receipt") {
		t.Fatalf("server with a retired receipt key: %v\n%s", err, out)
	}
}
