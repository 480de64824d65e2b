package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestRFC6962LogKey: an STI-CT log's static-ct-api key (0x05) is a log
// key, with its own key ID rule (the ID covers SHA-256 of the key).
func TestRFC6962LogKey(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.RFC6962VerifierString("log.example/stict", k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if l, ok := p.Log("log.example/stict"); !ok || l.VKey != vkey {
		t.Fatalf("log not found: %+v", l)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	id, key, _ := strings.Cut(rest, "+")
	wrongID := name + "+" + strings.Repeat("0", 8) + "+" + key
	if id == strings.Repeat("0", 8) {
		t.Skip("key ID happens to be zero")
	}
	if _, err := Parse([]byte("log " + wrongID + "\nquorum none\n")); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong key ID: %v", err)
	}
	v, err := NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range [][]byte{nil, make([]byte, 8), make([]byte, 12), make([]byte, 13)} {
		if v.Verify([]byte("log.example/stict\n1\nAAAA\n"), sig) {
			t.Errorf("verified %x", sig)
		}
	}
}

// rfc6962Signer signs checkpoints as a static-ct-api log does: an RFC 6962
// TreeHeadSignature (v1, tree_hash) as a note signature, written here
// from RFC 6962 §3.5 and static-ct-api rather than taken from a library.
type rfc6962Signer struct {
	name string
	hash uint32
	key  *ecdsa.PrivateKey
}

func newRFC6962Signer(t testing.TB, origin string) (*rfc6962Signer, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.RFC6962VerifierString(origin, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := parseVKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &rfc6962Signer{name: origin, hash: kv.hash, key: k}, vkey
}

func (s *rfc6962Signer) Name() string    { return s.name }
func (s *rfc6962Signer) KeyHash() uint32 { return s.hash }
func (s *rfc6962Signer) Sign(msg []byte) ([]byte, error) {
	c, err := parseCheckpoint(msg)
	if err != nil {
		return nil, err
	}
	ts := uint64(time.Now().UnixMilli())
	var ths []byte // digitally-signed struct { version v1, signature_type tree_hash, timestamp, tree_size, root hash }
	ths = append(ths, 0, 1)
	ths = binary.BigEndian.AppendUint64(ths, ts)
	ths = binary.BigEndian.AppendUint64(ths, c.Size)
	ths = append(ths, c.Hash[:]...)
	d := sha256.Sum256(ths)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	if err != nil {
		return nil, err
	}
	sig := binary.BigEndian.AppendUint64(nil, ts)
	sig = append(sig, 4, 3) // sha256, ecdsa
	sig = binary.BigEndian.AppendUint16(sig, uint16(len(der)))
	return append(sig, der...), nil
}

// TestLogWithTwoKeys: an STI-CT log signs its checkpoints with its RFC 6962
// key and with an Ed25519 key that C2SP witnesses can verify. A policy may
// list both for one origin; a checkpoint signed by either is the log's,
// and a bad signature by either is refused.
func TestLogWithTwoKeys(t *testing.T) {
	const origin = "log.example/stict"
	ct, ctVKey := newRFC6962Signer(t, origin)
	edKey, edVKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := note.NewSigner(edKey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte("log " + ctVKey + "\nlog " + edVKey + "\nquorum none\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if l, ok := p.Log(origin); !ok || l.VKey != ctVKey {
		t.Errorf("Log(%q) = %q, want the first key listed, %q", origin, l.VKey, ctVKey)
	}
	if got := p.LogKeys(origin); len(got) != 2 || got[1].VKey != edVKey {
		t.Errorf("LogKeys = %v", got)
	}
	if !p.HasLogKey(edVKey) || !p.HasLogKey(ctVKey) {
		t.Error("HasLogKey is false for a listed key")
	}
	if rt, err := Parse([]byte(p.String())); err != nil || rt.String() != p.String() {
		t.Errorf("String does not round-trip: %v", err)
	}

	cp := body(origin, 7)
	for _, c := range []struct {
		name string
		msg  []byte
		err  error
	}{
		{"both keys", sign(t, cp, ct, ed), nil},
		{"RFC 6962 key only (checkpoints from before the Ed25519 key)", sign(t, cp, ct), nil},
		{"Ed25519 key only (what a C2SP witness checks)", sign(t, cp, ed), nil},
		// flipSig breaks the first signature line of the key name.
		{"RFC 6962 signature broken", flipSig(t, sign(t, cp, ct, ed), origin), ErrLogSignature},
		{"Ed25519 signature broken", flipSig(t, sign(t, cp, ed, ct), origin), ErrLogSignature},
		{"neither", sign(t, cp, newLogKey(t, origin).signer), ErrLogSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.Verify(c.msg)
			if !errors.Is(err, c.err) {
				t.Fatalf("Verify = %v, want %v", err, c.err)
			}
			if err == nil && (got.Origin != origin || got.Size != 7) {
				t.Errorf("Verify = %+v", got)
			}
		})
	}

	only, err := p.LogOnly(origin)
	if err != nil {
		t.Fatal(err)
	}
	if only.String() != "log "+ctVKey+"\nlog "+edVKey+"\nquorum none\n" {
		t.Errorf("LogOnly = %q", only.String())
	}
	if _, err := p.LogOnly("other.example/log"); !errors.Is(err, ErrUnknownLog) {
		t.Errorf("LogOnly of an unknown origin: %v", err)
	}
}
