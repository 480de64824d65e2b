package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestFetchChain: -fetch-x5u takes a PEM or DER chain over HTTPS, and
// refuses plain HTTP, a redirect to it, an error status, more than 64 KiB
// and bytes that are no certificate.
func TestFetchChain(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x5u"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pemChain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(pemChain) }))
	defer plain.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chain.pem":
			w.Write(pemChain)
		case "/chain.der":
			w.Write(append(append([]byte{}, der...), der...))
		case "/big":
			w.Write(bytes.Repeat([]byte{'a'}, 64<<10+1))
		case "/junk":
			w.Write([]byte("not a certificate"))
		case "/downgrade":
			http.Redirect(w, r, plain.URL+"/chain.pem", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	saved := x5uClient.Transport
	x5uClient.Transport = srv.Client().Transport
	defer func() { x5uClient.Transport = saved }()

	for _, p := range []string{"/chain.pem", "/chain.der"} {
		chain, err := fetchChain(context.Background(), srv.URL+p)
		if err != nil || len(chain) != 2 || !bytes.Equal(chain[0], der) {
			t.Errorf("%s: %d certificates, %v", p, len(chain), err)
		}
	}
	for _, c := range []struct{ url, want string }{
		{plain.URL + "/chain.pem", "is not an https URL"},
		{srv.URL + "/downgrade", "only up to 3 https redirects"},
		{srv.URL + "/missing", "404"},
		{srv.URL + "/big", "over 65536 bytes"},
		{srv.URL + "/junk", "neither a PEM nor a DER"},
	} {
		if _, err := fetchChain(context.Background(), c.url); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}
