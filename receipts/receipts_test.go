package receipts

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/witness/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/receipt-v1.json")

// testLog is a log built with golang.org/x/mod/sumdb/tlog, an
// implementation independent of the one vesperlog serves and verifies with.
type testLog struct {
	origin  string
	signer  note.Signer
	vkey    string
	entries [][]byte
	hashes  []tlog.Hash // stored hashes
}

func newTestLog(t testing.TB, origin string, n int) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	l := &testLog{origin: origin, signer: signer, vkey: vkey}
	for i := 0; i < n; i++ {
		l.append(t, []byte(fmt.Sprintf("entry %d", i)))
	}
	return l
}

func (l *testLog) append(t testing.TB, e []byte) {
	hs, err := tlog.StoredHashes(int64(len(l.entries)), e, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	l.entries = append(l.entries, e)
	l.hashes = append(l.hashes, hs...)
}

func (l *testLog) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

// checkpoint returns the signed checkpoint of the whole tree, with extra
// signers (witnesses) appended.
func (l *testLog) checkpoint(t testing.TB, extra ...note.Signer) []byte {
	n := int64(len(l.entries))
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: body}, append([]note.Signer{l.signer}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (l *testLog) proof(t testing.TB, i int64, cp []byte) *Proof {
	p, err := tlog.ProveRecord(int64(len(l.entries)), i, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	pr := &Proof{Index: uint64(i), Checkpoint: cp}
	for _, h := range p {
		pr.Hashes = append(pr.Hashes, append([]byte(nil), h[:]...))
	}
	return pr
}

func newSigner(t testing.TB) (*Signer, *KeySet) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s, NewKeySet(s.PublicJWK())
}

func sign(t testing.TB, s *Signer, r *Receipt) string {
	t.Helper()
	jws, err := s.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func TestVerifyRoundTrip(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 1000)
	s, jwks := newSigner(t)
	p, err := policy.ForLog(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp := l.checkpoint(t)
	for _, i := range []int64{0, 1, 255, 256, 511, 998, 999} {
		r := &Receipt{Origin: l.origin, Index: uint64(i), Entry: l.entries[i], Proof: l.proof(t, i, cp), IssuedAt: time.Unix(1763856000, 0)}
		v, err := Verify(sign(t, s, r), Trust{Keys: jwks, Policy: p})
		if err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		if v.Index != uint64(i) || !bytes.Equal(v.Entry, l.entries[i]) || v.Origin != l.origin || v.Checkpoint.Size != 1000 || v.KeyID != s.KeyID() {
			t.Fatalf("index %d: verified %+v", i, v)
		}
		if len(v.Checks) != 5 {
			t.Errorf("checks: %q", v.Checks)
		}
	}
}

// TestVerifyRejects has one row per check of Verify; each must fail with
// the error of that check, and no other.
func TestVerifyRejects(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 10)
	s, jwks := newSigner(t)
	other, _ := newSigner(t)
	p, _ := policy.ForLog(l.vkey)
	otherLog := newTestLog(t, "example.test/vetting", 10)
	trust := Trust{Keys: jwks, Policy: p}
	cp := l.checkpoint(t)
	good := func() *Receipt {
		return &Receipt{Origin: l.origin, Index: 3, Entry: l.entries[3], Proof: l.proof(t, 3, cp), IssuedAt: time.Now()}
	}
	edKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	for _, c := range []struct {
		name    string
		receipt func() string
		want    error
	}{
		{"not a JWS", func() string { return "hello" }, ErrMalformed},
		{"unknown kid", func() string { return sign(t, other, good()) }, ErrUnknownKey},
		{"signature by another key under the trusted kid", func() string {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: edKey},
				(&jose.SignerOptions{}).WithType(Type).WithHeader("kid", s.KeyID()))
			jws, _ := signer.Sign([]byte(`{}`))
			out, _ := jws.CompactSerialize()
			return out
		}, ErrSignature},
		{"tampered payload", func() string {
			parts := strings.Split(sign(t, s, good()), ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = bytes.Replace(payload, []byte(`"index":3`), []byte(`"index":4`), 1)
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		}, ErrSignature},
		{"wrong typ", func() string {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", s.KeyID()))
			jws, _ := signer.Sign([]byte(`{}`))
			out, _ := jws.CompactSerialize()
			return out
		}, ErrMalformed},
		{"embedded jwk", func() string {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
				(&jose.SignerOptions{EmbedJWK: true}).WithType(Type))
			jws, _ := signer.Sign([]byte(`{}`))
			out, _ := jws.CompactSerialize()
			return out
		}, ErrMalformed},
		{"payload index differs from the proof's", func() string {
			r := good()
			r.Proof.Index = 4
			r.Proof = l.proof(t, 4, cp)
			jws, _ := s.Sign(&Receipt{Origin: r.Origin, Index: 4, Entry: r.Entry, Proof: &Proof{Index: 4, Hashes: r.Proof.Hashes, Checkpoint: cp}})
			return jws
		}, ErrInclusion},
		{"entry altered", func() string {
			r := good()
			r.Entry = []byte("entry 4")
			return sign(t, s, r)
		}, ErrInclusion},
		{"proof hash altered", func() string {
			r := good()
			r.Proof.Hashes[1][0] ^= 1
			return sign(t, s, r)
		}, ErrInclusion},
		{"proof too short", func() string {
			r := good()
			r.Proof.Hashes = r.Proof.Hashes[:1]
			return sign(t, s, r)
		}, ErrInclusion},
		{"checkpoint of a forked log under another key", func() string {
			r := good()
			r.Proof = otherLog.proof(t, 3, otherLog.checkpoint(t))
			return sign(t, s, r)
		}, ErrCheckpoint},
		{"checkpoint body altered", func() string {
			r := good()
			r.Proof.Checkpoint = bytes.Replace(cp, []byte("\n10\n"), []byte("\n11\n"), 1)
			return sign(t, s, r)
		}, ErrCheckpoint},
		{"receipt claims another origin", func() string {
			r := good()
			r.Origin = "example.test/stict"
			return sign(t, s, r)
		}, ErrCheckpoint},
		{"oversized", func() string { return strings.Repeat("A", MaxReceiptSize+1) }, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Verify(c.receipt(), trust)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %+v, %v; want %v", v, err, c.want)
			}
		})
	}
}

// witnessSigner returns a cosignature/v1 signer and its vkey.
func witnessSigner(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, cvkey
}

func TestVerifyWitnessQuorum(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 5)
	s, jwks := newSigner(t)
	w1, v1 := witnessSigner(t, "w1.example")
	w2, v2 := witnessSigner(t, "w2.example")
	w3, v3 := witnessSigner(t, "w3.example")
	p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s\nwitness w2 %s\nwitness w3 %s\ngroup g 2 w1 w2 w3\nquorum g\n", l.vkey, v1, v2, v3)))
	if err != nil {
		t.Fatal(err)
	}
	trust := Trust{Keys: jwks, Policy: p}
	receipt := func(cp []byte) string {
		return sign(t, s, &Receipt{Origin: l.origin, Index: 2, Entry: l.entries[2], Proof: l.proof(t, 2, cp)})
	}
	if v, err := Verify(receipt(l.checkpoint(t, w1, w3)), trust); err != nil {
		t.Fatalf("2 of 3 cosigned: %v", err)
	} else if !strings.Contains(strings.Join(v.Checks, "\n"), "w1") {
		t.Errorf("checks do not name the cosigners: %q", v.Checks)
	}
	if _, err := Verify(receipt(l.checkpoint(t, w2)), trust); !errors.Is(err, ErrCheckpoint) || !errors.Is(err, policy.ErrQuorum) {
		t.Fatalf("1 of 3 cosigned: %v, want ErrCheckpoint wrapping policy.ErrQuorum", err)
	}
}

type golden struct {
	Receipt string `json:"receipt"`
	JWKS    KeySet `json:"jwks"`
	LogVKey string `json:"log_vkey"`
	Origin  string `json:"origin"`
	Index   uint64 `json:"index"`
	Entry   string `json:"entry_b64"`
	Size    uint64 `json:"tree_size"`
}

// TestGoldenReceipt keeps a receipt made by an earlier build verifying
// (regenerate with -update only when the format changes on purpose).
func TestGoldenReceipt(t *testing.T) {
	if *update {
		l := newTestLog(t, "vesperlog.example/vetting", 300)
		s, jwks := newSigner(t)
		cp := l.checkpoint(t)
		g := golden{
			Receipt: sign(t, s, &Receipt{Origin: l.origin, Index: 257, Entry: l.entries[257], Proof: l.proof(t, 257, cp), IssuedAt: time.Unix(1763856000, 0)}),
			JWKS:    *jwks, LogVKey: l.vkey, Origin: l.origin, Index: 257, Entry: base64.StdEncoding.EncodeToString(l.entries[257]), Size: 300,
		}
		b, _ := json.MarshalIndent(g, "", "  ")
		if err := os.WriteFile("testdata/receipt-v1.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("testdata/receipt-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	p, err := policy.ForLog(g.LogVKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(g.Receipt, Trust{Keys: &g.JWKS, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	if v.Origin != g.Origin || v.Index != g.Index || base64.StdEncoding.EncodeToString(v.Entry) != g.Entry || v.Checkpoint.Size != g.Size {
		t.Fatalf("golden receipt decoded as %+v", v)
	}
}

// specExample is the example of C2SP tlog-proof@v1, with its elided
// signatures, which ParseProof passes through verbatim.
const specExample = `c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
`

func TestParseProofSpecExample(t *testing.T) {
	p, err := ParseProof([]byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	if p.Index != 73894 || len(p.Hashes) != 5 || !bytes.HasPrefix(p.Checkpoint, []byte("example.com/fancylog\n109482\n")) || p.Extra == nil {
		t.Fatalf("parsed %+v", p)
	}
	if got := string(p.Marshal()); got != specExample {
		t.Fatalf("re-encoded differently:\n%s", got)
	}
}

func TestParseProofRejects(t *testing.T) {
	h := "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="
	cp := "\n\nexample.com/log\n1\n" + h + "\n\n— sig\n"
	for name, text := range map[string]string{
		"wrong header":          "c2sp.org/tlog-proof@v2\nindex 0" + cp,
		"no index":              "c2sp.org/tlog-proof@v1\n" + h + cp,
		"leading zero":          "c2sp.org/tlog-proof@v1\nindex 01" + cp,
		"signed index":          "c2sp.org/tlog-proof@v1\nindex +1" + cp,
		"extra after index":     "c2sp.org/tlog-proof@v1\nindex 1\nextra AAAA" + cp,
		"bad extra":             "c2sp.org/tlog-proof@v1\nextra !!\nindex 1" + cp,
		"short hash":            "c2sp.org/tlog-proof@v1\nindex 1\nAAAA" + cp,
		"url-safe base64 hash":  "c2sp.org/tlog-proof@v1\nindex 1\n" + strings.NewReplacer("+", "-", "/", "_").Replace("B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=") + cp,
		"no checkpoint":         "c2sp.org/tlog-proof@v1\nindex 1\n\n",
		"CR inside a hash":      "c2sp.org/tlog-proof@v1\nindex 1\n" + h[:20] + "\r" + h[20:] + cp,
		"no blank line":         "c2sp.org/tlog-proof@v1\nindex 1\n",
		"too many proof hashes": "c2sp.org/tlog-proof@v1\nindex 1\n" + strings.Repeat(h+"\n", 64) + cp[1:],
	} {
		if p, err := ParseProof([]byte(text)); !errors.Is(err, ErrMalformedProof) {
			t.Errorf("%s: ParseProof = %+v, %v", name, p, err)
		}
	}
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		// What parses re-encodes to the same bytes.
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("%q re-encodes as %q", b, p.Marshal())
		}
	})
}

func FuzzVerify(f *testing.F) {
	b, err := os.ReadFile("testdata/receipt-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		f.Fatal(err)
	}
	p, err := policy.ForLog(g.LogVKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(g.Receipt)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Verify(s, Trust{Keys: &g.JWKS, Policy: p})
		if err == nil && (v.Origin != g.Origin || v.Checkpoint == nil) {
			t.Fatalf("verified receipt for %q", v.Origin)
		}
	})
}

// opaqueSigner hides the *ecdsa.PrivateKey behind crypto.Signer, as a key
// held elsewhere would be.
type opaqueSigner struct{ k *ecdsa.PrivateKey }

func (o opaqueSigner) Public() crypto.PublicKey { return o.k.Public() }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, d, opts)
}

// TestSignerWritesGoJoseJWS: the receipt JWS written by hand has the
// protected header go-jose writes for the same key and options, byte for
// byte, and go-jose verifies its R‖S signature, for a key behind any
// crypto.Signer.
func TestSignerWritesGoJoseJWS(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []crypto.Signer{k, opaqueSigner{k}} {
		s, err := NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := s.sign([]byte(`{"index":3}`))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType(Type).WithHeader("kid", s.KeyID()))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := ref.Sign([]byte(`{"index":3}`))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		o, r := strings.Split(ours, "."), strings.Split(theirs, ".")
		if o[0] != r[0] || o[1] != r[1] {
			t.Fatalf("header and payload %s.%s, go-jose writes %s.%s", o[0], o[1], r[0], r[1])
		}
		parsed, err := jose.ParseSignedCompact(ours, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if body, err := parsed.Verify(k.Public()); err != nil || string(body) != `{"index":3}` {
			t.Fatalf("go-jose Verify = %q, %v", body, err)
		}
	}
}
