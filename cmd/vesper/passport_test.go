package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPassportUsage: passport sign, passport verify and ca delegate refuse
// a command line that cannot run with one line and exit 2, and a file that
// is not what the flag wants with one line and exit 1, before anything is
// signed, fetched or written.
func TestPassportUsage(t *testing.T) {
	dir := t.TempDir()
	notTrust := filepath.Join(dir, "trust.json")
	os.WriteFile(notTrust, []byte(`{"logs":[]}`), 0o644)
	notPEM := filepath.Join(dir, "k.pem")
	os.WriteFile(notPEM, []byte("not a key"), 0o600)
	tok := filepath.Join(dir, "p.jwt")
	os.WriteFile(tok, []byte("a.b.c"), 0o644)
	sign := []string{"passport", "sign", "-key", notPEM, "-chain", notPEM}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"passport"}, 2, "say sign or verify"},
		{[]string{"passport", "sign"}, 2, "-key and -chain are required"},
		{append(sign, "-dest", "12025550101"), 2, "exactly one of -orig and -orig-uri"},
		{append(sign, "-orig", "1", "-orig-uri", "sip:a@b", "-dest", "2"), 2, "exactly one of -orig and -orig-uri"},
		{append(sign, "-orig", "12025550100"), 2, "give -dest or -dest-uri"},
		{append(sign, "-orig", "1", "-dest", "2", "-ppt", "div"), 2, `-ppt "div": want shaken, rcd or rsp`},
		{append(sign, "-orig", "1", "-dest", "2", "-ppt", "shaken"), 2, "needs -attest A, B or C"},
		{append(sign, "-orig", "1", "-dest", "2", "-attest", "D"), 2, `-attest "D": want A, B or C`},
		{append(sign, "-orig", "1", "-dest", "2", "-ppt", "rcd", "-attest", "A"), 2, "-attest is SHAKEN's"},
		{append(sign, "-orig", "1", "-dest", "2", "-no-x5c"), 2, "-no-x5c needs -x5u"},
		{append(sign, "-orig", "1", "-dest", "2", "-identity"), 2, "-identity needs -info"},
		{append(sign, "-orig", "1", "-dest", "2", "-info", "https://x"), 2, "-info goes with -identity"},
		{append(sign, "-orig", "1", "-dest", "2", "-attest", "A"), 1, "is not a PEM private key"},
		{[]string{"passport", "verify", "-trust", notTrust}, 2, "give one PASSporT"},
		{[]string{"passport", "verify", tok}, 2, "-trust is required"},
		{[]string{"passport", "verify", "-trust", notTrust, "-now", "yesterday", tok}, 2, "is not an RFC 3339 time"},
		{[]string{"passport", "verify", "-trust", notTrust, "-freshness", "-1s", tok}, 2, "-freshness must be positive"},
		{[]string{"passport", "verify", "-trust", filepath.Join(dir, "none.json"), tok}, 1, "no such file"},
		{[]string{"passport", "verify", "-trust", notTrust, tok}, 1, "is not a transparency configuration"},
		{[]string{"ca", "delegate"}, 2, "-pki and -out are required"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir}, 2, "give at least one -log"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir, "-log", "http://x", "-tn", "1", "-range", "1,2"}, 2, "-tn or -range, not both"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir, "-log", "http://x", "-mode", "secret"}, 2, `-mode "secret"`},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir, "-log", "http://x", "-mode", "hash"}, 2, "-mode goes with -rcd"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir, "-log", "http://x", "-range", "12025550100"}, 2, "want START,COUNT"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", dir, "-log", "http://x", "-range", "12025550100,1"}, 2, "count must be a number of at least 2"},
		{[]string{"ca", "delegate", "-pki", dir, "-out", filepath.Join(dir, "out"), "-log", "http://x"}, 1, "is not a test PKI directory"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("vesper %q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
		if strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("vesper %q: error is not one line: %q", c.args, errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("ca delegate created -out though it issued nothing")
	}
}
