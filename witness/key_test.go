package witness

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestKeys: GenerateKey makes keys of both algorithms whose vkeys
// witness/policy takes, ParseKey reads them back (and the Ed25519 note keys
// earlier keygens wrote), and refuses keys whose key ID or name is wrong.
func TestKeys(t *testing.T) {
	for _, c := range []struct {
		alg, vkeyType string
		keyBytes      int
	}{
		{Ed25519, "\x04", 32},
		{MLDSA44, "\x06", 1312},
	} {
		skey, vkey, err := GenerateKey("witness.test/"+c.alg, c.alg)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2]) // base64 may hold a +
		if len(raw) != 1+c.keyBytes || string(raw[:1]) != c.vkeyType {
			t.Errorf("%s vkey holds %d bytes of type %x", c.alg, len(raw), raw[:1])
		}
		if _, err := policy.NewWitnessVerifier(vkey); err != nil {
			t.Errorf("%s vkey: %v", c.alg, err)
		}
		k, err := ParseKey(skey + "\n")
		if err != nil || k.VKey != vkey || k.Alg != c.alg || k.Signer.Name() != "witness.test/"+c.alg {
			t.Fatalf("ParseKey(%s key) = %+v, %v", c.alg, k, err)
		}
		// A key ID that is not the key's.
		f := strings.SplitN(skey, "+", 5)
		f[3] = fmt.Sprintf("%08x", 0xffffffff^mustHex(t, f[3]))
		if _, err := ParseKey(strings.Join(f, "+")); err == nil || !strings.Contains(err.Error(), "does not match the key") {
			t.Errorf("%s key with a wrong key ID: %v", c.alg, err)
		}
	}

	// The Ed25519 note keys earlier versions wrote keep their vkey.
	skey, nvkey, _ := note.GenerateKey(rand.Reader, "witness.test/old")
	k, err := ParseKey(skey)
	want, _ := fnote.VKeyToCosignatureV1(nvkey)
	if err != nil || k.VKey != want || k.Alg != Ed25519 {
		t.Fatalf("ParseKey(note key) = %+v, %v; want vkey %s", k, err, want)
	}

	long := strings.Repeat("w", 256)
	if _, _, err := GenerateKey(long, MLDSA44); err == nil {
		t.Error("an ML-DSA-44 key named with 256 bytes")
	}
	if _, _, err := GenerateKey(long, Ed25519); err != nil {
		t.Errorf("an Ed25519 key named with 256 bytes: %v", err)
	}
	for _, bad := range []string{"", "witness.test/w", "PRIVATE+KEY+w+00000000+AQ==", "PRIVATE+KEY+w+00000000+" + base64.StdEncoding.EncodeToString(append([]byte{2}, make([]byte, 32)...))} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	if _, _, err := GenerateKey("witness.test/w", "ed448"); err == nil {
		t.Error("an unknown algorithm accepted")
	}
}

func mustHex(t *testing.T, s string) uint32 {
	var v uint32
	if _, err := fmt.Sscanf(s, "%08x", &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMLDSALongOrigin: an ML-DSA-44 witness refuses a log whose origin its
// signed message cannot hold, at start and (should one slip by) when
// cosigning, where formats/note would sign a message that is not the
// spec's; an Ed25519 witness cosigns it.
func TestMLDSALongOrigin(t *testing.T) {
	l := newTestLog(t, "example.test/"+strings.Repeat("o", 243)) // 256 bytes
	l.grow(t, 3)
	skey, _, _ := GenerateKey("witness.test/m", MLDSA44)
	k, _ := ParseKey(skey)
	logs, err := policy.Parse([]byte("log " + l.vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(k.Signer, logs, t.TempDir()); err == nil || !strings.Contains(err.Error(), "over 255 bytes") {
		t.Fatalf("New with a 256-byte origin: %v", err)
	}
	w := &Witness{signer: k.Signer, logs: logs, dir: t.TempDir(), locks: map[string]*sync.Mutex{}}
	if _, err := w.AddCheckpoint(body(0, nil, l.checkpoint(t, 3, l.root(t, 3)))); err == nil || !strings.Contains(err.Error(), "cannot cover origin") {
		t.Fatalf("cosigning a 256-byte origin with ML-DSA-44: %v", err)
	}
	ed, _ := newWitness(t, t.TempDir(), Ed25519, l)
	if _, err := ed.AddCheckpoint(body(0, nil, l.checkpoint(t, 3, l.root(t, 3)))); err != nil {
		t.Fatalf("Ed25519 witness of a 256-byte origin: %v", err)
	}
}
