package receipts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestKeySetGolden: testdata/jwks-windows.json is a key history as a log
// publishes it (a key from before windows, a retired key, the current
// key). It parses with its windows, encodes again to the same bytes, and
// still parses as a plain JWKS with go-jose, which ignores the window members
// as any JWKS reader should.
func TestKeySetGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/jwks-windows.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ nbf, exp int64 }{{0, 0}, {1735689600, 1767225600}, {1767225600, 0}}
	if len(set.Keys) != len(want) {
		t.Fatalf("%d keys, want %d", len(set.Keys), len(want))
	}
	for i, w := range want {
		k := set.Keys[i]
		if got := unixOrZero(k.NotBefore); got != w.nbf {
			t.Errorf("key %d: nbf %d, want %d", i, got, w.nbf)
		}
		if got := unixOrZero(k.Expires); got != w.exp {
			t.Errorf("key %d: exp %d, want %d", i, got, w.exp)
		}
		if kid, err := KeyID(k.Key); err != nil || kid != k.KeyID {
			t.Errorf("key %d: kid %s is not its thumbprint %s (%v)", i, k.KeyID, kid, err)
		}
	}
	if !set.Keys[1].Retired() || set.Keys[2].Retired() || set.Keys[0].Retired() {
		t.Errorf("retired: %v %v %v, want only the second", set.Keys[0].Retired(), set.Keys[1].Retired(), set.Keys[2].Retired())
	}
	again, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), b) {
		t.Fatalf("re-encoded differently:\n%s", again)
	}
	var plain jose.JSONWebKeySet
	if err := json.Unmarshal(b, &plain); err != nil || len(plain.Keys) != 3 || len(plain.Key(set.Keys[1].KeyID)) != 1 {
		t.Fatalf("go-jose reads %d keys: %v", len(plain.Keys), err)
	}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// TestKeyRoundTrip: every shape of window survives marshal and parse, and
// a key without one encodes exactly as go-jose encodes it.
func TestKeyRoundTrip(t *testing.T) {
	s, _ := newSigner(t)
	jwk := s.PublicJWK()
	nbf, exp := time.Unix(1767225600, 0), time.Unix(1798761600, 0)
	for _, c := range []struct {
		name     string
		nbf, exp time.Time
		members  string
	}{
		{"no window", time.Time{}, time.Time{}, ""},
		{"current", nbf, time.Time{}, `,"nbf":1767225600}`},
		{"retired", nbf, exp, `,"nbf":1767225600,"exp":1798761600}`},
		{"retired, from before windows", time.Time{}, exp, `,"exp":1798761600}`},
		{"window of one second", nbf, nbf, `,"nbf":1767225600,"exp":1767225600}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := Key{JSONWebKey: jwk, NotBefore: c.nbf, Expires: c.exp}
			b, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := json.Marshal(jwk)
			if c.members == "" && !bytes.Equal(b, plain) {
				t.Fatalf("%s, want go-jose's %s", b, plain)
			}
			if c.members != "" && string(b) != string(plain[:len(plain)-1])+c.members {
				t.Fatalf("%s, want go-jose's with %s", b, c.members)
			}
			var got Key
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !got.NotBefore.Equal(c.nbf) || !got.Expires.Equal(c.exp) || got.KeyID != jwk.KeyID || !got.JSONWebKey.Valid() {
				t.Fatalf("parsed %+v", got)
			}
		})
	}
}

// TestKeyParseRejects: window members are whole, non-negative seconds,
// and a window does not end before it starts. A failed parse leaves the
// key as it was.
func TestKeyParseRejects(t *testing.T) {
	s, _ := newSigner(t)
	plain, _ := json.Marshal(s.PublicJWK())
	with := func(members string) []byte { return append(plain[:len(plain)-1:len(plain)-1], members+"}"...) }
	for name, b := range map[string][]byte{
		"nbf a string":       with(`,"nbf":"1767225600"`),
		"nbf fractional":     with(`,"nbf":1767225600.5`),
		"nbf in exponent":    with(`,"nbf":1.7e9`),
		"nbf negative":       with(`,"nbf":-1`),
		"nbf null":           with(`,"nbf":null`),
		"exp past year 9999": with(`,"exp":253402300800`),
		"exp before nbf":     with(`,"nbf":1767225600,"exp":1767225599`),
		"not a JWK":          []byte(`{"nbf":1}`),
	} {
		t.Run(name, func(t *testing.T) {
			k := Key{NotBefore: time.Unix(7, 0)}
			if err := json.Unmarshal(b, &k); err == nil {
				t.Fatalf("parsed %s as %+v", b, k)
			}
			if k.NotBefore.Unix() != 7 || k.Key != nil {
				t.Fatalf("a failed parse changed the key: %+v", k)
			}
		})
	}
	if _, err := ParseKeySet([]byte(`{"keys":[` + string(with(`,"exp":"x"`)) + `]}`)); err == nil {
		t.Fatal("a key set with a bad window parsed")
	}
}

// TestVerifyKeyWindow has one row per case of the rule "a retired key
// verifies a receipt only if nbf <= iat <= exp, a current key only if
// nbf <= iat; a key without a window, any iat".
func TestVerifyKeyWindow(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 4)
	p, err := policy.ForLog(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp := l.checkpoint(t)
	s, _ := newSigner(t)
	nbf, exp := time.Unix(1767225600, 0), time.Unix(1769904000, 0)
	for _, c := range []struct {
		name     string
		nbf, exp time.Time
		iat      time.Time
		ok       bool
	}{
		{"retired key, iat inside", nbf, exp, nbf.Add(24 * time.Hour), true},
		{"retired key, iat at nbf", nbf, exp, nbf, true},
		{"retired key, iat at exp", nbf, exp, exp, true},
		{"retired key, iat one second before nbf", nbf, exp, nbf.Add(-time.Second), false},
		{"retired key, iat one second after exp", nbf, exp, exp.Add(time.Second), false},
		{"retired key, iat years later", nbf, exp, exp.AddDate(5, 0, 0), false},
		{"current key, iat after nbf", nbf, time.Time{}, nbf.AddDate(5, 0, 0), true},
		{"current key, iat before nbf", nbf, time.Time{}, nbf.Add(-time.Hour), false},
		{"key from before windows, any iat", time.Time{}, time.Time{}, time.Unix(0, 0), true},
		{"retired key from before windows, iat before exp", time.Time{}, exp, time.Unix(0, 0), true},
		{"retired key from before windows, iat after exp", time.Time{}, exp, exp.Add(time.Second), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			trust := Trust{Keys: &KeySet{Keys: []Key{{JSONWebKey: s.PublicJWK(), NotBefore: c.nbf, Expires: c.exp}}}, Policy: p}
			jws := sign(t, s, &Receipt{Origin: l.origin, Index: 1, Entry: l.entries[1], Proof: l.proof(t, 1, cp), IssuedAt: c.iat})
			v, err := Verify(jws, trust)
			if !c.ok {
				if !errors.Is(err, ErrKeyWindow) {
					t.Fatalf("Verify = %v, want ErrKeyWindow", err)
				}
				for _, want := range []string{s.KeyID(), c.iat.UTC().Format(time.RFC3339)} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !strings.Contains(strings.Join(v.Checks, "\n"), "receipt key window: issued "+c.iat.UTC().Format(time.RFC3339)) {
				t.Errorf("checks do not say the window was checked: %q", v.Checks)
			}
		})
	}
}

// TestSignerKeyCheck: a Signer given a check does not sign when it fails.
func TestSignerKeyCheck(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 2)
	cp := l.checkpoint(t)
	errRetired := errors.New("retired")
	var gotKID string
	var gotIAT time.Time
	s, err := NewSigner(mustKey(t), WithKeyCheck(func(kid string, iat time.Time) error {
		gotKID, gotIAT = kid, iat
		if iat.After(time.Unix(1767225600, 0)) {
			return errRetired
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := &Receipt{Origin: l.origin, Index: 0, Entry: l.entries[0], Proof: l.proof(t, 0, cp), IssuedAt: time.Unix(1767225600, 0)}
	if _, err := s.Sign(r); err != nil || gotKID != s.KeyID() || !gotIAT.Equal(r.IssuedAt) {
		t.Fatalf("Sign = %v; check saw %s, %v", err, gotKID, gotIAT)
	}
	r.IssuedAt = r.IssuedAt.Add(time.Second)
	if jws, err := s.Sign(r); !errors.Is(err, errRetired) || jws != "" {
		t.Fatalf("Sign = %q, %v; want the check's error", jws, err)
	}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzParseKeySet: what parses encodes, and that encoding parses to the
// same encoding again (windows included).
func FuzzParseKeySet(f *testing.F) {
	b, err := os.ReadFile("testdata/jwks-windows.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseKeySet(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(set)
		if err != nil {
			return // go-jose may refuse to encode a key it parsed: not a window matter
		}
		again, err := ParseKeySet(enc)
		if err != nil {
			t.Fatalf("%s parsed, its encoding %s does not: %v", b, enc, err)
		}
		enc2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encodings differ: %s, then %s (%v)", enc, enc2, err)
		}
		for i, k := range again.Keys {
			if !k.NotBefore.Equal(set.Keys[i].NotBefore) || !k.Expires.Equal(set.Keys[i].Expires) {
				t.Fatalf("key %d's window changed: %s, then %s", i, set.Keys[i].Window(), k.Window())
			}
		}
	})
}
