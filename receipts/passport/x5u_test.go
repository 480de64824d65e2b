package passport

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
	"strings"
	"testing"
	"time"
)

// TestFetchX5U: FetchX5U takes a PEM or DER chain over HTTPS, and
// refuses plain HTTP, a redirect to it, an error status, more than 64 KiB
// and bytes that are no certificate.
func TestFetchX5U(t *testing.T) {
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
	fetchChain := FetchX5U(srv.Client().Transport)

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
