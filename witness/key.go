package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"filippo.io/mldsa"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Key algorithms a witness cosigns with (tlog-cosignature), as
// vesperwitness keygen -alg names them.
const (
	Ed25519 = "ed25519"   // cosignature/v1, vkey type 0x04
	MLDSA44 = "ml-dsa-44" // ML-DSA-44 subtree/v1 cosignatures, vkey type 0x06
)

// Signature type bytes of the private keys ParseKey reads (signed-note).
const (
	typeEd25519     = 0x01 // an Ed25519 note key, which earlier keygens wrote
	typeCosignature = 0x04
	typeMLDSA44     = 0x06
)

// maxMLDSAString is the longest cosigner name and log origin that
// tlog-cosignature's ML-DSA-44 cosigned_message holds (opaque <1..2^8-1>).
const maxMLDSAString = 255

// Key is a witness's signing key.
type Key struct {
	Alg    string      // Ed25519 or MLDSA44
	Signer note.Signer // makes the cosignatures New needs
	VKey   string      // the cosigner's vkey, for policies
}

// GenerateKey returns a new private key for the witness named name, in
// signed-note form ("PRIVATE+KEY+<name>+<hex key ID>+<base64(type || key)>",
// which ParseKey reads), and its vkey. An Ed25519 key is written as an
// Ed25519 note key (type 0x01, as earlier versions did) and cosigns as
// cosignature/v1 (vkey type 0x04); an ML-DSA-44 key holds its 32-byte seed
// (type 0x06, as formats/note writes it).
func GenerateKey(name, alg string) (skey, vkey string, err error) {
	switch alg {
	case Ed25519:
		skey, _, err = note.GenerateKey(rand.Reader, name)
	case MLDSA44:
		if len(name) > maxMLDSAString {
			return "", "", fmt.Errorf("an ML-DSA-44 witness name is at most %d bytes (tlog-cosignature), %q is %d", maxMLDSAString, name, len(name))
		}
		skey, _, err = fnote.GenerateMLDSAKey(name)
	default:
		return "", "", fmt.Errorf("unknown key algorithm %q (want %s or %s)", alg, Ed25519, MLDSA44)
	}
	if err != nil {
		return "", "", fmt.Errorf("generating a %s key named %q: %w", alg, name, err)
	}
	k, err := ParseKey(skey)
	if err != nil {
		return "", "", err
	}
	return skey, k.VKey, nil
}

// ParseKey reads a witness private key that GenerateKey made (or an
// Ed25519 cosignature/v1 key, type 0x04). It checks what formats/note
// does not: the key ID must be the one computed from the name and key, and
// an ML-DSA-44 key's name must fit its signed message.
func ParseKey(skey string) (*Key, error) {
	f := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(f) != 5 || f[0] != "PRIVATE" || f[1] != "KEY" {
		return nil, errors.New("not a signed-note private key (PRIVATE+KEY+<name>+<key ID>+<key>)")
	}
	name, id16 := f[2], f[3]
	raw, err := base64.StdEncoding.Strict().DecodeString(f[4])
	if err != nil || len(raw) != 1+32 {
		// Every type here has a 32-byte seed.
		return nil, fmt.Errorf("key %q: not the base64 of a type byte and a 32-byte seed", name)
	}
	typ, seed := raw[0], raw[1:]
	k := &Key{}
	var pub []byte
	vkeyType := byte(typeCosignature)
	switch typ {
	case typeEd25519, typeCosignature:
		k.Alg = Ed25519
		pub = ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	case typeMLDSA44:
		if len(name) > maxMLDSAString {
			return nil, fmt.Errorf("key %q: an ML-DSA-44 witness name is at most %d bytes", name, maxMLDSAString)
		}
		sk, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), seed)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		k.Alg, vkeyType = MLDSA44, typeMLDSA44
		pub = sk.PublicKey().Bytes()
	default:
		return nil, fmt.Errorf("key %q has signature type 0x%02x; a witness key is Ed25519 (0x01 or 0x04) or ML-DSA-44 (0x06)", name, typ)
	}
	if want := fmt.Sprintf("%08x", keyID(name, typ, pub)); id16 != want {
		return nil, fmt.Errorf("key %q: key ID %s does not match the key (computed %s)", name, id16, want)
	}
	s, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", name, err)
	}
	id := keyID(name, vkeyType, pub)
	if s.KeyHash() != id {
		return nil, fmt.Errorf("key %q: formats/note computes key ID %08x, not %08x", name, s.KeyHash(), id)
	}
	k.Signer = s
	if k.Alg == MLDSA44 {
		k.Signer = mldsaSigner{s}
	}
	k.VKey = fmt.Sprintf("%s+%08x+%s", name, id, base64.StdEncoding.EncodeToString(append([]byte{vkeyType}, pub...)))
	return k, nil
}

// keyID is signed-note's key ID: SHA-256(name || "\n" || type || key)[:4].
func keyID(name string, typ byte, pub []byte) uint32 {
	b := append([]byte(name+"\n"), typ)
	h := sha256.Sum256(append(b, pub...))
	return binary.BigEndian.Uint32(h[:4])
}

// mldsaSigner refuses to cosign a checkpoint whose origin is longer than
// the ML-DSA-44 signed message holds: formats/note would truncate its
// length to 8 bits and sign a message that is not the spec's.
type mldsaSigner struct{ note.Signer }

func (s mldsaSigner) Sign(msg []byte) ([]byte, error) {
	origin, _, _ := strings.Cut(string(msg), "\n")
	if len(origin) > maxMLDSAString {
		return nil, fmt.Errorf("an ML-DSA-44 cosignature cannot cover origin %.40q..., which is over %d bytes", origin, maxMLDSAString)
	}
	return s.Signer.Sign(msg)
}
