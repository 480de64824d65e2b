package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/cmd/internal/cli/clitest"
	"golang.org/x/mod/sumdb/note"
)

// TestErrors: usage mistakes exit 2 with the usage line; failures exit 1
// with exactly one line on standard error.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "kyc.txt")
	os.WriteFile(notJSON, []byte("name: Jane"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: vesper COMMAND"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"token"}, 2, "say issue, present or verify (vesper token -h for help)"},
		{[]string{"agent", "frob"}, 2, `unknown verb "frob"`},
		{[]string{"submit"}, 2, "-key is required"},
		{[]string{"submit", "-key", "k", "-digest", "a", "-digests", "b"}, 2, "exactly one of"},
		{[]string{"kyc-hash", "-in", notJSON, "-out", filepath.Join(dir, "c.json")}, 1, "is not JSON"},
		{[]string{"kyc-hash", "-in", notJSON, "-salt", "x", "-out", "y"}, 2, "give -out"},
		{[]string{"verify-receipt", "-trust", "t.json"}, 2, "give one receipt file"},
		{[]string{"verify-receipt", "-trust", filepath.Join(dir, "none.json"), "r.jwt"}, 1, "no such file"},
		{[]string{"keygen", "agent", "-alg", "RS256", "-out", filepath.Join(dir, "k.jwk")}, 1, "use ES256 or EdDSA"},
		{[]string{"submit", "-key", filepath.Join(dir, "none.jwk"), "-digest", strings.Repeat("A", 43)}, 1, "reading key"},
		{[]string{"submit", "-bogus"}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("vesper %q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
		if code != 0 && c.args != nil && strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("vesper %q: error is not one line: %q", c.args, errb.String())
		}
	}
}

// TestHelp: every command and verb prints its synopsis and all its flags
// on -h, exit 0; a flag it does not define is one line and exit 2.
func TestHelp(t *testing.T) { clitest.CheckHelp(t, program) }

func TestKeygenRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "va.jwk")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "agent", "-out", k}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	before, _ := os.ReadFile(k)
	if code := run(context.Background(), []string{"keygen", "agent", "-out", k}, &out, &errb); code != 1 {
		t.Fatalf("second keygen over the same file: exit %d", code)
	}
	if after, _ := os.ReadFile(k); !bytes.Equal(before, after) {
		t.Fatal("existing key overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "va.pub.jwk")); err != nil {
		t.Fatal(err)
	}
}

// TestAgentsAddMissingRegistry: a mistyped -agents path is refused, and
// nothing is created, unless -create says to start a new registry.
func TestAgentsAddMissingRegistry(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"keygen", "agent", "-out", filepath.Join(dir, "va.jwk")}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	typo := filepath.Join(dir, "vesperlog-dta", "agents.json")
	add := []string{"agents", "add", "-agents", typo, "-name", "va", "-key", filepath.Join(dir, "va.pub.jwk")}
	errb.Reset()
	if code := run(ctx, add, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no agent registry at "+typo) || !strings.Contains(errb.String(), "-create") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Dir(typo)); !os.IsNotExist(err) {
		t.Fatalf("the mistyped directory was created: %v", err)
	}
	if code := run(ctx, append(add, "-create"), &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if _, err := os.Stat(typo); err != nil {
		t.Fatal(err)
	}
}

// TestMisleadingErrors: a file of the wrong kind is named, with the kind
// of file expected (issue 12, item 5).
func TestMisleadingErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	agents := write("agents.json", `{"agents": []}`+"\n")
	trust := write("trust.json", `{"logs": [{"name": "vetting", "origin": "example.test/vetting", "vkey": "x"}], "receipt_keys": {"keys": []}, "witness_policy": "quorum none\n"}`+"\n")
	receipt := write("receipt.jwt", "eyJ.eyJ.sig\n")
	_, vkey, err := note.GenerateKey(rand.Reader, "example.test/vetting")
	if err != nil {
		t.Fatal(err)
	}
	_, vkey2, _ := note.GenerateKey(rand.Reader, "example.test/stict")
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"keygen", "agent", "-out", filepath.Join(dir, "va.jwk")}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify-receipt", "-trust", agents, receipt}, "-trust " + agents + " is not a transparency configuration"},
		{[]string{"submit", "-key", filepath.Join(dir, "va.pub.jwk"), "-digest", strings.Repeat("A", 43)}, "va.pub.jwk is a public JWK; a private key is needed"},
		{[]string{"verify-receipt", "-log-vkey", vkey + "\n" + vkey2 + "\n", "-jwks", trust, receipt}, "-log-vkey is one log's vkey (NAME+HASH+KEY), but it is 2 lines"},
		{[]string{"check-evidence", "-log-vkey", vkey + "\n" + vkey2, receipt}, "but it is 2 lines"},
		{[]string{"verify-receipt", "-log-vkey", vkey, "-jwks", trust, receipt}, "-jwks " + trust + " is not a JWKS of receipt keys"},
	} {
		out.Reset()
		errb.Reset()
		code := run(ctx, c.args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("vesper %q: exit %d, %q; want 1 and %q", c.args[0], code, errb.String(), c.want)
		}
	}
}
