package passport

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts/internal/jsinterop"
)

// node runs interop.mjs (see jsinterop.Run).
func node(t *testing.T, want bool, args ...string) map[string]any {
	t.Helper()
	return jsinterop.Run(t, "jose", want, args...)
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestInteropJoseSignsWeVerify: a SHAKEN PASSporT that npm jose signs
// with a delegate certificate's key and x5c verifies here, through every
// check (its header is in jose's insertion order, not RFC 8225 §9's, which
// a verifier reports and accepts); a byte changed in its payload does not.
func TestInteropJoseSignsWeVerify(t *testing.T) {
	f := newFixture(t)
	c := f.delegate(t, stitest.DelegateOptions{Name: "jose interop"})
	dir := t.TempDir()
	k, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, d := range f.p.Chain(c) {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	payload := fmt.Sprintf(`{"attest":"A","dest":{"tn":["12155551213"]},"iat":%d,"orig":{"tn":"12025550101"},"origid":"123e4567-e89b-12d3-a456-426614174000"}`, f.now.Unix())
	res := node(t, true, "passport-sign",
		"--key", writeFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})),
		"--chain", writeFile(t, dir, "chain.pem", chain),
		"--payload", writeFile(t, dir, "payload.json", []byte(payload)))
	tok, _ := res["token"].(string)

	v, err := Verify(context.Background(), tok, f.opts())
	if err != nil {
		t.Fatalf("jose's PASSporT: %v (check %s)", err, Check(err))
	}
	h := v.PASSporT.Header
	if h.Alg != "ES256" || h.Typ != "passport" || h.PPT != "shaken" || len(h.X5C) != 2 || h.Canonical {
		t.Errorf("header %+v: want ES256, passport, shaken, 2 certificates, not canonical", h)
	}
	if v.PASSporT.Claims.Orig.TN != "12025550101" || v.PASSporT.Claims.Attest != "A" || len(v.SCTs) != 1 {
		t.Errorf("claims %+v, %d SCTs", v.PASSporT.Claims, len(v.SCTs))
	}

	// The same signature over another payload.
	parts := strings.Split(tok, ".")
	other := strings.Replace(payload, "12025550101", "12025550102", 1)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(other)) + "." + parts[2]
	if _, err := Verify(context.Background(), forged, f.opts()); Check(err) != "signature" {
		t.Errorf("jose's signature over another payload: %v, want check signature", err)
	}
}

// TestInteropWeSignJoseVerifies: a PASSporT signed here verifies with npm
// jose under the key of its x5c leaf (importX509), with its header and
// claims as signed; a tampered one does not.
func TestInteropWeSignJoseVerifies(t *testing.T) {
	f := newFixture(t)
	c := f.delegate(t, stitest.DelegateOptions{Name: "jose interop"})
	tok := f.sign(t, c, f.shaken("12025550101"), "shaken")
	dir := t.TempDir()
	res := node(t, true, "passport-verify", "--token", writeFile(t, dir, "p.jwt", []byte(tok)))
	h, _ := res["header"].(map[string]any)
	p, _ := res["payload"].(map[string]any)
	if h["alg"] != "ES256" || h["typ"] != "passport" || h["ppt"] != "shaken" {
		t.Errorf("jose read the header %v", h)
	}
	if o, _ := p["orig"].(map[string]any); o["tn"] != "12025550101" || p["attest"] != "A" || p["iat"] != float64(f.now.Unix()) {
		t.Errorf("jose read the payload %v", p)
	}
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iat":1}`)) + "." + parts[2]
	node(t, false, "passport-verify", "--token", writeFile(t, dir, "t.jwt", []byte(tampered)))
}

// TestInteropCTGoSCTList: a delegate certificate whose SCT list
// certificate-transparency-go encoded (x509.SignedCertificateTimestampList
// through its tls package) carries a PASSporT that verifies here, down to
// the SCT. (log/stict tests the SCT list itself against ct-go both ways.)
func TestInteropCTGoSCTList(t *testing.T) {
	f := newFixture(t)
	pre, err := f.p.NewPrecert(stitest.DelegateOptions{Name: "ct-go SCT list"})
	if err != nil {
		t.Fatal(err)
	}
	sct, err := f.submit(t, f.log)(f.p.Chain(pre))
	if err != nil {
		t.Fatal(err)
	}
	list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sct}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.p.Finalize(pre, list)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), f.sign(t, c, f.shaken("12025550101"), "shaken"), f.opts())
	if err != nil {
		t.Fatalf("PASSporT of a certificate with ct-go's SCT list: %v", err)
	}
	if len(v.SCTs) != 1 || v.SCTs[0].Log.Origin != f.log.Name() {
		t.Fatalf("SCTs %+v", v.SCTs)
	}
}
