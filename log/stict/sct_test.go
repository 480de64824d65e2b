package stict

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

// sctEnv is a test PKI and two STI-CT log signers that sign SCTs in
// process, as the log's add-pre-chain does (ValidateChain, NewEntry, SCT).
type sctEnv struct {
	p      *stitest.PKI
	roots  *Roots
	logs   []*Signer
	now    time.Time
	nextID uint64
}

func newSCTEnv(t *testing.T) *sctEnv {
	t.Helper()
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	env := &sctEnv{p: p, roots: roots, now: now}
	for _, origin := range []string{"a.example/stict", "b.example/stict"} {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, err := NewSigner(origin, k)
		if err != nil {
			t.Fatal(err)
		}
		env.logs = append(env.logs, s)
	}
	return env
}

// submit returns a stitest submit function of log i: the TLS-encoded SCT.
func (env *sctEnv) submit(t *testing.T, i int) func([][]byte) ([]byte, error) {
	return func(chain [][]byte) ([]byte, error) {
		sct := env.sct(t, i, chain)
		return cttls.Marshal(*sct)
	}
}

func (env *sctEnv) sct(t *testing.T, i int, chain [][]byte) *ct.SignedCertificateTimestamp {
	t.Helper()
	v, err := ValidateChain(chain, env.roots, env.now, true)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEntry(v, uint64(env.now.UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	env.nextID++
	sct, err := env.logs[i].SCT(e, env.nextID)
	if err != nil {
		t.Fatal(err)
	}
	return sct
}

func (env *sctEnv) ctlog(t *testing.T, i int) CTLog {
	t.Helper()
	l, err := CTLogFromVKey(env.logs[i].Name(), env.logs[i].VKey(), "http://127.0.0.1/stict")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestVerifyEmbeddedSCTs: a delegate certificate issued through two logs
// verifies with ours and with certificate-transparency-go's
// ctutil.VerifySCT, keeps its constraint extension in place, and each
// way an SCT can be wrong is refused or ignored as VerifyEmbeddedSCTs
// says.
func TestVerifyEmbeddedSCTs(t *testing.T) {
	env := newSCTEnv(t)
	p := env.p
	extra := stitest.RCDConstraint(stitest.ModeCommit)
	final, err := p.IssueDelegate(stitest.DelegateOptions{Name: "delegate", Extra: []pkix.Extension{extra}}, env.submit(t, 0), env.submit(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Finalize keeps every extension of the precertificate in order, the
	// SCT list where the poison was (plan §0.4).
	var ids []string
	for _, e := range final.Cert.Extensions {
		ids = append(ids, e.Id.String())
	}
	if got := strings.Join(ids, " "); !strings.HasSuffix(got, OIDTNAuthList.String()+" "+extra.Id.String()+" "+OIDSCTList.String()) {
		t.Errorf("final certificate's extensions: %s", got)
	}
	if _, err := ValidateChain(p.Chain(final), env.roots, env.now, false); err != nil {
		t.Fatal(err)
	}
	logs := []CTLog{env.ctlog(t, 0), env.ctlog(t, 1)}
	issuer := p.Intermediate.Cert
	got, ignored, err := VerifyEmbeddedSCTs(final.Cert, issuer, logs, 2, env.now)
	if err != nil || len(got) != 2 || len(ignored) != 0 {
		t.Fatalf("VerifyEmbeddedSCTs = %d SCTs, %q, %v", len(got), ignored, err)
	}
	for i, v := range got {
		if v.Log.Origin != logs[i].Origin || !v.HasLeafIndex || v.Timestamp != uint64(env.now.UnixMilli()) {
			t.Errorf("SCT %d: %+v", i, v.SCT)
		}
		// ct-go computes the same signed input (as a MerkleTreeLeaf) and
		// accepts the signature.
		sct := ctSCT(t, v.SCT)
		chain := ctChain(t, [][]byte{final.DER, p.Intermediate.DER})
		if err := ctutil.VerifySCT(env.logs[i].Public(), chain, sct, true); err != nil {
			t.Errorf("SCT %d: ctutil.VerifySCT: %v", i, err)
		}
		// ct-go's MerkleTreeLeaf of the embedded SCT, with the SCT's
		// extensions (static-ct-api's leaf_index, which ct-go leaves out),
		// is the input we verified.
		want, err := ct.MerkleTreeLeafForEmbeddedSCT(chain, v.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		want.TimestampedEntry.Extensions = ct.CTExtensions(v.Extensions)
		wantBytes, err := cttls.Marshal(*want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.Leaf, wantBytes) {
			t.Errorf("SCT %d: signed input differs from ct-go's MerkleTreeLeaf", i)
		}
	}

	// One trusted log: the other's SCT is ignored with a line.
	got, ignored, err = VerifyEmbeddedSCTs(final.Cert, issuer, logs[:1], 1, env.now)
	if err != nil || len(got) != 1 || len(ignored) != 1 || !strings.Contains(ignored[0], "not trusted") {
		t.Errorf("one trusted log: %d SCTs, %q, %v", len(got), ignored, err)
	}
	for name, tc := range map[string]struct {
		cert     *x509.Certificate
		issuer   *x509.Certificate
		logs     []CTLog
		required int
		now      time.Time
	}{
		"too few trusted logs":    {final.Cert, issuer, logs[:1], 2, env.now},
		"no trusted log":          {final.Cert, issuer, nil, 0, env.now},
		"no SCTs":                 {p.TN.Cert, issuer, logs, 1, env.now},
		"wrong issuer key":        {final.Cert, p.Root.Cert, logs, 1, env.now},
		"timestamp in the future": {final.Cert, issuer, logs, 1, env.now.Add(-2 * time.Minute)},
		"forged signature":        {forge(t, p, final), issuer, logs, 1, env.now},
	} {
		if _, _, err := VerifyEmbeddedSCTs(tc.cert, tc.issuer, tc.logs, tc.required, tc.now); !errors.Is(err, ErrSCT) {
			t.Errorf("%s: err = %v, want ErrSCT", name, err)
		}
	}
}

// forge returns final with one byte of its first SCT's signature flipped,
// finalized again.
func forge(t *testing.T, p *stitest.PKI, final *stitest.Cert) *x509.Certificate {
	t.Helper()
	scts, err := EmbeddedSCTs(final.Cert)
	if err != nil {
		t.Fatal(err)
	}
	var encoded [][]byte
	for i, s := range scts {
		if i == 0 {
			s.Signature = bytes.Clone(s.Signature)
			s.Signature[len(s.Signature)-1] ^= 1
		}
		b, err := cttls.Marshal(*ctSCT(t, s))
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, b)
	}
	return refinalize(t, p, final, encoded)
}

// refinalize issues final again with the given SCTs: its precertificate
// is final with the poison where the SCT list was.
func refinalize(t *testing.T, p *stitest.PKI, final *stitest.Cert, scts [][]byte) *x509.Certificate {
	t.Helper()
	var exts []pkix.Extension
	for _, e := range final.Cert.Extensions {
		if e.Id.Equal(OIDSCTList) {
			exts = append(exts, pkix.Extension{Id: stitest.OIDPoison, Critical: true, Value: []byte{5, 0}})
		} else {
			exts = append(exts, e)
		}
	}
	tmpl := &x509.Certificate{SerialNumber: final.Cert.SerialNumber, RawSubject: final.Cert.RawSubject,
		NotBefore: final.Cert.NotBefore, NotAfter: final.Cert.NotAfter, ExtraExtensions: exts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Intermediate.Cert, final.Cert.PublicKey, p.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	list, err := stitest.SCTList(scts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Finalize(&stitest.Cert{Cert: pc, DER: der, Key: final.Key}, list)
	if err != nil {
		t.Fatal(err)
	}
	return c.Cert
}

func ctSCT(t *testing.T, s SCT) *ct.SignedCertificateTimestamp {
	t.Helper()
	return &ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1, LogID: ct.LogID{KeyID: s.LogID}, Timestamp: s.Timestamp, Extensions: ct.CTExtensions(s.Extensions),
		Signature: ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: s.Signature},
	}
}

// TestSCTListInterop: a list that certificate-transparency-go encodes
// (tls.Marshal of SignedCertificateTimestampList) parses and verifies with
// ours, and ct-go's certificate parser sees the SCTs we see, for a
// precertificate signed by the CA and one signed by a Precertificate
// Signing Certificate.
func TestSCTListInterop(t *testing.T) {
	env := newSCTEnv(t)
	p := env.p
	for _, pre := range []*stitest.Cert{p.Precert, p.DelegatedPrecert} {
		name := pre.Cert.Subject.CommonName
		sct := env.sct(t, 1, p.Chain(pre))
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
		got, _, err := VerifyEmbeddedSCTs(final.Cert, p.Intermediate.Cert, []CTLog{env.ctlog(t, 1)}, 1, env.now)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %d SCTs, %v", name, len(got), err)
		}
		cc, err := ctx509.ParseCertificate(final.DER)
		if err != nil {
			t.Fatal(err)
		}
		theirs := cc.SCTList.SCTList
		if len(theirs) != 1 || !bytes.Equal(theirs[0].Val, sctBytes) {
			t.Fatalf("%s: ct-go sees %d SCTs", name, len(theirs))
		}
		var dec ct.SignedCertificateTimestamp
		if _, err := cttls.Unmarshal(theirs[0].Val, &dec); err != nil {
			t.Fatal(err)
		}
		if g := got[0]; g.LogID != dec.LogID.KeyID || g.Timestamp != dec.Timestamp || !bytes.Equal(g.Extensions, dec.Extensions) || !bytes.Equal(g.Signature, dec.Signature.Signature) {
			t.Errorf("%s: ours %+v, ct-go's %+v", name, g.SCT, dec)
		}
		if g := got[0]; g.LeafIndex != env.nextID {
			t.Errorf("%s: leaf_index %d, want %d", name, g.LeafIndex, env.nextID)
		}
	}
}

// TestParseSCTList: each way a list can be malformed is refused.
func TestParseSCTList(t *testing.T) {
	sct := func(mod func(*[]byte)) []byte {
		var b []byte
		b = append(b, 0)                      // v1
		b = append(b, make([]byte, 32)...)    // log ID
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 1) // timestamp
		b = append(b, 0, 8, 0, 0, 5, 0, 0, 0, 0, 7)
		b = append(b, 4, 3, 0, 2, 0x30, 0)
		if mod != nil {
			mod(&b)
		}
		return b
	}
	ext := func(scts ...[]byte) []byte {
		list, err := stitest.SCTList(scts...)
		if err != nil {
			t.Fatal(err)
		}
		v, err := asn1.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := ext(sct(nil), sct(nil))
	s, err := ParseSCTList(good)
	if err != nil || len(s) != 2 || !s[0].HasLeafIndex || s[0].LeafIndex != 7 || s[0].Timestamp != 1 {
		t.Fatalf("ParseSCTList = %+v, %v", s, err)
	}
	noIndex, err := ParseSCTList(ext(sct(func(b *[]byte) { (*b)[41], (*b)[42] = 0, 0; *b = append((*b)[:43], (*b)[51:]...) })))
	if err != nil || noIndex[0].HasLeafIndex {
		t.Fatalf("no leaf_index: %+v, %v", noIndex, err)
	}
	many := make([][]byte, MaxSCTs+1)
	for i := range many {
		many[i] = sct(nil)
	}
	for name, b := range map[string][]byte{
		"empty":             {},
		"not OCTET STRING":  append([]byte{0x05}, good[1:]...),
		"trailing byte":     append(bytes.Clone(good), 0),
		"long-form length":  append([]byte{0x04, 0x81, good[1]}, good[2:]...),
		"empty list":        ext(),
		"list length short": append([]byte{good[0], good[1]}, append([]byte{good[2], good[3] - 1}, good[4:]...)...),
		"empty SCT":         ext([]byte{}),
		"v2":                ext(sct(func(b *[]byte) { (*b)[0] = 1 })),
		"truncated":         ext(sct(func(b *[]byte) { *b = (*b)[:len(*b)-1] })),
		"trailing in SCT":   ext(sct(func(b *[]byte) { *b = append(*b, 0) })),
		"RSA":               ext(sct(func(b *[]byte) { (*b)[len(*b)-5] = 1 })),
		"SHA-1":             ext(sct(func(b *[]byte) { (*b)[len(*b)-6] = 2 })),
		"empty signature":   ext(sct(func(b *[]byte) { *b = append((*b)[:len(*b)-4], 0, 0) })),
		"short leaf_index":  ext(sct(func(b *[]byte) { (*b)[42], (*b)[45] = 7, 4; *b = append((*b)[:50], (*b)[51:]...) })),
		"two leaf_index": ext(sct(func(b *[]byte) {
			x := bytes.Clone((*b)[43:51])
			(*b)[42] = 16
			*b = append((*b)[:51], append(x, (*b)[51:]...)...)
		})),
		"33 SCTs": ext(many...),
	} {
		_, err := ParseSCTList(b)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrSCT) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestCTLogFromVKey: the log ID and key follow from the log's vkey; a
// vkey of another origin or type is refused.
func TestCTLogFromVKey(t *testing.T) {
	env := newSCTEnv(t)
	s := env.logs[0]
	l, err := CTLogFromVKey(s.Name(), s.VKey(), "u")
	if err != nil || l.LogID != s.LogID() || !l.Key.Equal(s.Public()) || l.MMD != DefaultMMD {
		t.Fatalf("CTLogFromVKey = %+v, %v", l, err)
	}
	_, ed, _ := note.GenerateKey(rand.Reader, s.Name())
	for name, c := range map[string][2]string{
		"other origin": {"other.example/stict", s.VKey()},
		"Ed25519":      {s.Name(), ed},
		"garbage":      {s.Name(), "x+y+z"},
	} {
		if _, err := CTLogFromVKey(c[0], c[1], ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseSCTList(f *testing.F) {
	list, _ := stitest.SCTList(make([]byte, 47))
	v, _ := asn1.Marshal(list)
	f.Add(v)
	f.Add([]byte{0x04, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		scts, err := ParseSCTList(b)
		if err != nil {
			return
		}
		if len(scts) == 0 || len(scts) > MaxSCTs {
			t.Fatalf("%d SCTs", len(scts))
		}
		for _, s := range scts {
			if len(s.Signature) == 0 {
				t.Fatal("empty signature accepted")
			}
		}
	})
}
