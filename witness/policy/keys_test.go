package policy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Test keys are made from a seed derived from their name, so that the
// checked-in fuzz corpus stays valid across runs.
func seed(name string) io.Reader {
	h := sha256.Sum256([]byte("vesperlog witness/policy test key " + name))
	return bytes.NewReader(h[:])
}

type logKey struct {
	origin, vkey string
	signer       note.Signer
}

// newLogKey makes an Ed25519 note key (0x01) whose name is origin.
func newLogKey(t testing.TB, origin string) logKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(seed(origin), origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return logKey{origin: origin, vkey: vkey, signer: s}
}

type witnessKey struct {
	keyName, vkey string
	signer        note.Signer
	priv          ed25519.PrivateKey
	hash          uint32
}

// newWitnessKey makes a cosignature/v1 key (0x04) with the given key name.
// formats/note.NewSignerForCosignatureV1 takes a note-style skey,
// "PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 || 32-byte seed)".
func newWitnessKey(t testing.TB, keyName string) witnessKey {
	t.Helper()
	return newWitnessKeyFrom(t, keyName, keyName)
}

// newWitnessKeyFrom names a key derived from seedName's seed, so a test
// can wrap one public key under different names.
func newWitnessKeyFrom(t testing.TB, keyName, seedName string) witnessKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(seed(seedName))
	if err != nil {
		t.Fatal(err)
	}
	vkey, hash := makeVKey(keyName, algCosignatureV1, pub)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", keyName, hash,
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyHash() != hash {
		t.Fatalf("formats/note computed key ID %08x, test computed %08x", s.KeyHash(), hash)
	}
	return witnessKey{keyName: keyName, vkey: vkey, signer: s, priv: priv, hash: hash}
}

// makeVKey encodes any key material as a vkey with a correct key ID.
func makeVKey(name string, typ byte, pub []byte) (string, uint32) {
	k := append([]byte{typ}, pub...)
	h := sha256.Sum256([]byte(name + "\n" + string(k)))
	hash := binary.BigEndian.Uint32(h[:4])
	return fmt.Sprintf("%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(k)), hash
}

// pubOf returns the public key material of a vkey.
func pubOf(t testing.TB, vkey string) []byte {
	t.Helper()
	k, err := parseVKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return k.pub
}

// body is a checkpoint body for origin at size, with a hash derived from both.
func body(origin string, size uint64, ext ...string) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s %d", origin, size)))
	s := fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(h[:]))
	for _, e := range ext {
		s += e + "\n"
	}
	return s
}

func sign(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeys are the keys the table tests refer to as {NAME} placeholders.
type testKeys struct {
	l1, l2 logKey
	w      map[string]witnessKey // X1..X3, Y1..Y3, Z (not in policies)
	m      map[string]mldsaKey   // M1, M2: ML-DSA-44 witnesses
	repl   *strings.Replacer
}

var (
	keysMu    sync.Mutex
	keysCache *testKeys
)

func keys(t testing.TB) *testKeys {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if keysCache != nil {
		return keysCache
	}
	k := &testKeys{
		l1: newLogKey(t, "example.com/log1"),
		l2: newLogKey(t, "example.com/log2"),
		w:  make(map[string]witnessKey),
		m:  make(map[string]mldsaKey),
	}
	for _, n := range []string{"X1", "X2", "X3", "Y1", "Y2", "Y3", "Z"} {
		k.w[n] = newWitnessKey(t, "witness.example/"+n)
	}
	l1pub := pubOf(t, k.l1.vkey)
	x1pub := pubOf(t, k.w["X1"].vkey)
	l1Renamed, _ := makeVKey("example.com/log1-renamed", algEd25519, l1pub)
	l1AsCosig, _ := makeVKey("witness.example/log1", algCosignatureV1, l1pub)
	l1OtherPub := sha256.Sum256([]byte("another log1 key"))
	l1Other, _ := makeVKey("example.com/log1", algEd25519, l1OtherPub[:])
	x1Renamed, _ := makeVKey("witness.example/X1-renamed", algCosignatureV1, x1pub)
	x1Rotated := newWitnessKeyFrom(t, "witness.example/X1", "X1 rotated")
	x1As01, _ := makeVKey("witness.example/X1", algEd25519, x1pub)
	mldsa, _ := makeVKey("witness.example/M", 0x06, make([]byte, 1312))
	short, _ := makeVKey("example.com/short", algEd25519, make([]byte, 31))
	// A wrong key ID: the right one plus one, in lowercase hex.
	xk, _ := parseVKey(k.w["X1"].vkey)
	badID := fmt.Sprintf("witness.example/X1+%08x+%s", xk.hash+1, strings.SplitN(k.w["X1"].vkey, "+", 3)[2])
	// An uppercase key ID: pick a witness name whose ID has a hex letter.
	var upperID string
	for i := 0; upperID == ""; i++ {
		v, h := makeVKey(fmt.Sprintf("witness.example/U%d", i), algCosignatureV1, x1pub)
		if id := fmt.Sprintf("%08x", h); strings.ContainsAny(id, "abcdef") {
			upperID = strings.Replace(v, "+"+id+"+", "+"+strings.ToUpper(id)+"+", 1)
		}
	}
	for _, n := range []string{"M1", "M2"} {
		k.m[n] = newMLDSAKey(t, "witness.example/"+n)
	}
	m1pub := pubOf(t, k.m["M1"].vkey)
	m1Renamed, _ := makeVKey("witness.example/M1-renamed", algMLDSA44, m1pub)
	mShort, _ := makeVKey("witness.example/M", algMLDSA44, m1pub[:1311])
	mLong, _ := makeVKey("witness.example/M", algMLDSA44, append(m1pub, 0))
	mName255, _ := makeVKey(strings.Repeat("m", 255), algMLDSA44, m1pub)
	mName256, _ := makeVKey(strings.Repeat("m", 256), algMLDSA44, m1pub)
	pairs := []string{
		"{L1}", k.l1.vkey, "{L2}", k.l2.vkey,
		"{L1renamed}", l1Renamed, "{L1asCosig}", l1AsCosig, "{L1other}", l1Other,
		"{X1renamed}", x1Renamed, "{X1rotated}", x1Rotated.vkey, "{X1as01}", x1As01,
		"{MLDSA}", mldsa, "{SHORT}", short, "{BADID}", badID, "{UPPERID}", upperID,
		"{M1renamed}", m1Renamed, "{MSHORT}", mShort, "{MLONG}", mLong, "{MNAME255}", mName255, "{MNAME256}", mName256,
	}
	for n, w := range k.w {
		pairs = append(pairs, "{"+n+"}", w.vkey)
	}
	for n, m := range k.m {
		pairs = append(pairs, "{"+n+"}", m.vkey)
	}
	k.repl = strings.NewReplacer(pairs...)
	keysCache = k
	return k
}

func (k *testKeys) expand(s string) string { return k.repl.Replace(s) }
