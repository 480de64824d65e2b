package stict

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

func newSigner(t testing.TB) *Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner("example.com/stict", k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckpointSignature(t *testing.T) {
	s := newSigner(t)
	root := sha256.Sum256([]byte("root"))
	body := fmt.Sprintf("example.com/stict\n42\n%s\n", base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: body}, s)
	if err != nil {
		t.Fatal(err)
	}
	// formats/note, as a static-ct-api client would.
	v, err := fnote.NewRFC6962Verifier(s.VKey())
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyHash() != s.KeyHash() {
		t.Fatalf("key hash %08x, formats/note computes %08x", s.KeyHash(), v.KeyHash())
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatalf("formats/note refuses our checkpoint: %v", err)
	}
	// The same signature is an RFC 6962 STH that certificate-transparency-go verifies.
	sth, err := s.STH(signed)
	if err != nil {
		t.Fatal(err)
	}
	if sth.TreeSize != 42 || !bytes.Equal(sth.SHA256RootHash, root[:]) {
		t.Fatalf("STH %+v", sth)
	}
	head, err := sth.ToSignedTreeHead()
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ct.NewSignatureVerifier(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.VerifySTHSignature(*head); err != nil {
		t.Fatalf("certificate-transparency-go refuses our STH: %v", err)
	}

	// What an RFC 6962 signature would not cover is not signed.
	for _, bad := range []string{
		body + "extension line\n",
		fmt.Sprintf("other.example/stict\n42\n%s\n", base64.StdEncoding.EncodeToString(root[:])),
	} {
		if _, err := s.Sign([]byte(bad)); err == nil {
			t.Errorf("signed %q", bad)
		}
	}
	// A signature cut short is refused, not a panic.
	sv2, err := NewVerifier(s.VKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range [][]byte{nil, make([]byte, 8), make([]byte, 11), make([]byte, 13)} {
		if sv2.Verify([]byte(body), sig) {
			t.Errorf("verified signature %x", sig)
		}
	}
}

// TestSCT issues SCTs for a certificate and a precertificate, checks them
// with certificate-transparency-go, and ends the precertificate flow in a
// final certificate whose embedded SCT a standard verifier accepts.
func TestSCT(t *testing.T) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner(t)
	ts := uint64(now.UnixMilli())

	v, err := ValidateChain(p.Chain(p.TN), roots, now, false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEntry(v, ts)
	if err != nil {
		t.Fatal(err)
	}
	sct, err := s.SCT(e, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctutil.VerifySCT(s.Public(), ctChain(t, p.Chain(p.TN)), sct, false); err != nil {
		t.Fatalf("certificate SCT: %v", err)
	}
	if idx, err := parseLeafIndex([]byte(sct.Extensions)); err != nil || idx != 7 {
		t.Fatalf("SCT extensions %x: leaf_index %d, %v", sct.Extensions, idx, err)
	}
	again, err := s.SCT(e, 7)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := cttls.Marshal(*sct)
	b2, _ := cttls.Marshal(*again)
	if !bytes.Equal(b1, b2) {
		t.Error("the same entry got two different SCTs")
	}

	for _, pre := range []*stitest.Cert{p.Precert, p.DelegatedPrecert} {
		name := pre.Cert.Subject.CommonName
		v, err := ValidateChain(p.Chain(pre), roots, now, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e, err := NewEntry(v, ts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := sha256.Sum256(p.Intermediate.Cert.RawSubjectPublicKeyInfo); !bytes.Equal(e.IssuerKeyHash, want[:]) {
			t.Errorf("%s: issuer key hash is not the final issuer's", name)
		}
		sct, err := s.SCT(e, 8)
		if err != nil {
			t.Fatal(err)
		}
		sctBytes, err := cttls.Marshal(*sct)
		if err != nil {
			t.Fatal(err)
		}
		list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sctBytes}}})
		if err != nil {
			t.Fatal(err)
		}
		final, err := p.Finalize(pre, list)
		if err != nil {
			t.Fatal(err)
		}
		if err := ctutil.VerifySCT(s.Public(), ctChain(t, [][]byte{final.DER, p.Intermediate.DER}), sct, true); err != nil {
			t.Fatalf("%s: embedded SCT of the final certificate: %v", name, err)
		}
		// The final certificate is itself a valid STI certificate.
		if _, err := ValidateChain([][]byte{final.DER, p.Intermediate.DER}, roots, now, false); err != nil {
			t.Fatalf("%s: final certificate: %v", name, err)
		}
	}
}

func ctChain(t *testing.T, der [][]byte) []*ctx509.Certificate {
	t.Helper()
	var out []*ctx509.Certificate
	for _, d := range der {
		c, err := ctx509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestLeafExtensions: the extensions SCT reads from a MerkleTreeLeaf by
// hand are those certificate-transparency-go decodes, and a leaf that is
// not a v1 timestamped entry, or is cut short or too long, is refused.
func TestLeafExtensions(t *testing.T) {
	p, err := stitest.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*ctonly.Entry{
		{Timestamp: 1, Certificate: p.TN.DER},
		{Timestamp: 2, IsPrecert: true, Certificate: p.Precert.Cert.RawTBSCertificate, Precertificate: p.Precert.DER, IssuerKeyHash: make([]byte, 32)},
	} {
		leaf := e.MerkleTreeLeaf(1<<40 - 1) // the largest leaf_index
		var want ct.MerkleTreeLeaf
		if rest, err := cttls.Unmarshal(leaf, &want); err != nil || len(rest) != 0 {
			t.Fatal(err)
		}
		got, err := leafExtensions(leaf)
		if err != nil || !bytes.Equal(got, want.TimestampedEntry.Extensions) || len(got) == 0 {
			t.Fatalf("leafExtensions = %x, %v; want %x", got, err, want.TimestampedEntry.Extensions)
		}
		for _, bad := range [][]byte{leaf[:len(leaf)-1], append(bytes.Clone(leaf), 0), leaf[:9], append([]byte{1}, leaf[1:]...), append([]byte{0, 1}, leaf[2:]...)} {
			if _, err := leafExtensions(bad); err == nil {
				t.Errorf("leafExtensions accepted %x", bad)
			}
		}
	}
}
