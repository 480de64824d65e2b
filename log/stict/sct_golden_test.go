package stict

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

const sctGoldenFile = "testdata/sct-list-v1.json"

// sctGolden is a final certificate with one embedded SCT, what it was
// issued under, and what the SCT must parse and verify to.
type sctGolden struct {
	Comment      string `json:"comment"`
	LogKeyPEM    string `json:"log_key_pem"`
	Origin       string `json:"origin"`
	CertPEM      string `json:"certificate_pem"`
	IssuerPEM    string `json:"issuer_pem"`
	ExtnValueHex string `json:"sct_list_extn_value_hex"`
	LogIDHex     string `json:"log_id_hex"`
	Timestamp    uint64 `json:"timestamp"`
	LeafIndex    uint64 `json:"leaf_index"`
	LeafHashHex  string `json:"leaf_hash_hex"` // SHA-256(0x00 ‖ signed input)
}

// TestGoldenSCTList: a committed certificate's SCT list extension parses to
// the recorded fields, and its SCT verifies with the recorded log key to
// the recorded leaf hash. -update writes a new one.
func TestGoldenSCTList(t *testing.T) {
	if *update {
		writeSCTGolden(t)
	}
	raw, err := os.ReadFile(sctGoldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g sctGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	pemCert := func(s string) *x509.Certificate {
		b, _ := pem.Decode([]byte(s))
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cert, issuer := pemCert(g.CertPEM), pemCert(g.IssuerPEM)
	kb, _ := pem.Decode([]byte(g.LogKeyPEM))
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(g.Origin, k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	log, err := CTLogFromVKey(g.Origin, s.VKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	var ext []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDSCTList) {
			ext = e.Value
		}
	}
	if hex.EncodeToString(ext) != g.ExtnValueHex {
		t.Fatalf("SCT list extension %x, recorded %s", ext, g.ExtnValueHex)
	}
	scts, err := ParseSCTList(ext)
	if err != nil || len(scts) != 1 {
		t.Fatalf("ParseSCTList: %d, %v", len(scts), err)
	}
	if sc := scts[0]; hex.EncodeToString(sc.LogID[:]) != g.LogIDHex || sc.Timestamp != g.Timestamp || !sc.HasLeafIndex || sc.LeafIndex != g.LeafIndex {
		t.Fatalf("parsed %+v, recorded %+v", sc, g)
	}
	v, _, err := VerifyEmbeddedSCTs(cert, issuer, []CTLog{log}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(append([]byte{0}, v[0].Leaf...)); hex.EncodeToString(h[:]) != g.LeafHashHex {
		t.Errorf("leaf hash %x, recorded %s", h, g.LeafHashHex)
	}
}

func writeSCTGolden(t *testing.T) {
	env := newSCTEnv(t)
	final, err := env.p.IssueDelegate(stitest.DelegateOptions{Name: "golden delegate", Lifetime: 10 * 365 * 24 * time.Hour}, env.submit(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := VerifyEmbeddedSCTs(final.Cert, env.p.Intermediate.Cert, []CTLog{env.ctlog(t, 0)}, 1, env.now)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(env.logs[0].key)
	if err != nil {
		t.Fatal(err)
	}
	var extn []byte
	for _, e := range final.Cert.Extensions {
		if e.Id.Equal(OIDSCTList) {
			extn = e.Value
		}
	}
	lh := sha256.Sum256(append([]byte{0}, v[0].Leaf...))
	g := sctGolden{
		Comment:      "A delegate certificate of the STI test PKI with one embedded SCT (static-ct-api leaf_index), its issuer, and the log key that signed the SCT. Regenerate with go test ./log/stict -run TestGoldenSCTList -update.",
		LogKeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})),
		Origin:       env.logs[0].Name(),
		CertPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: final.DER})),
		IssuerPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: env.p.Intermediate.DER})),
		ExtnValueHex: hex.EncodeToString(extn),
		LogIDHex:     hex.EncodeToString(v[0].LogID[:]),
		Timestamp:    v[0].Timestamp,
		LeafIndex:    v[0].LeafIndex,
		LeafHashHex:  hex.EncodeToString(lh[:]),
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sctGoldenFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
