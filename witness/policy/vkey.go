package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Signature type identifiers (signed-note).
const (
	algEd25519       = 0x01 // log keys
	algCosignatureV1 = 0x04 // witness keys (tlog-cosignature, Ed25519)
	algRFC6962STH    = 0x05 // static-ct-api log keys (RFC 6962 tree head signatures)
	algMLDSA44       = 0x06 // witness and log keys (tlog-cosignature, ML-DSA-44)
)

// Sizes of tlog-cosignature's ML-DSA-44 type: the public key, and the
// longest cosigner name and log origin its cosigned_message can hold
// (opaque <1..2^8-1>).
const (
	mldsa44PublicKeySize = 1312
	maxCosignedString    = 255
)

// vkey is a decoded verifier key.
type vkey struct {
	name string
	hash uint32
	typ  byte
	pub  []byte // public key material, without the type byte
}

// parseVKey decodes "<name>+<hex key ID>+<base64(type || key)>" strictly,
// more so than the note libraries: the key ID must be eight lowercase hex
// digits equal to the key ID computed from name, type and key (formats/note
// does not check it at all), and the base64 must be canonical, so that one
// key has one spelling and String round-trips byte for byte.
func parseVKey(s string) (vkey, error) {
	name, rest, ok1 := strings.Cut(s, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+") // base64 may itself contain '+'
	if !ok1 || !ok2 {
		return vkey{}, fmt.Errorf("%q is not <name>+<key ID>+<key>", s)
	}
	if !validKeyName(name) {
		return vkey{}, fmt.Errorf("key name %q is empty, not UTF-8, or contains a space or '+'", name)
	}
	if len(hash16) != 8 || strings.Trim(hash16, "0123456789abcdef") != "" {
		return vkey{}, fmt.Errorf("key ID %q is not 8 lowercase hex digits", hash16)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || base64.StdEncoding.EncodeToString(key) != key64 {
		return vkey{}, fmt.Errorf("key %q is not canonical standard base64", key64)
	}
	if len(key) == 0 {
		return vkey{}, errors.New("key is empty")
	}
	k := vkey{name: name, typ: key[0], pub: key[1:]}
	h := sha256.Sum256([]byte(name + "\n" + string(key)))
	if k.typ == algRFC6962STH {
		// static-ct-api: the key ID covers the RFC 6962 log ID, the
		// SHA-256 of the public key, not the key itself.
		logID := sha256.Sum256(k.pub)
		h = sha256.Sum256([]byte(name + "\n" + string(rune(algRFC6962STH)) + string(logID[:])))
	}
	k.hash = binary.BigEndian.Uint32(h[:4])
	if want := fmt.Sprintf("%08x", k.hash); hash16 != want {
		return vkey{}, fmt.Errorf("key ID %s does not match the key (computed %s)", hash16, want)
	}
	if (k.typ == algEd25519 || k.typ == algCosignatureV1) && len(k.pub) != 32 {
		return vkey{}, fmt.Errorf("%s key is %d bytes, want 32", typeName(k.typ), len(k.pub))
	}
	if k.typ == algMLDSA44 {
		if len(k.pub) != mldsa44PublicKeySize {
			return vkey{}, fmt.Errorf("%s key is %d bytes, want %d", typeName(k.typ), len(k.pub), mldsa44PublicKeySize)
		}
		if len(name) > maxCosignedString {
			return vkey{}, fmt.Errorf("%s key name is %d bytes; its signed message holds at most %d", typeName(k.typ), len(name), maxCosignedString)
		}
	}
	return k, nil
}

// validKeyName is signed-note's rule for key names (the same test as
// golang.org/x/mod/sumdb/note).
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

func typeName(t byte) string {
	switch t {
	case algEd25519:
		return "0x01 (Ed25519 note key)"
	case 0x02:
		return "0x02 (ECDSA)"
	case algCosignatureV1:
		return "0x04 (Ed25519 cosignature/v1)"
	case 0x05:
		return "0x05 (RFC 6962 tree head signature)"
	case algMLDSA44:
		return "0x06 (ML-DSA-44 cosignature)"
	}
	return fmt.Sprintf("0x%02x", t)
}

// witnessKeyType reports whether t is a witness's key type: an Ed25519
// cosignature/v1 key or an ML-DSA-44 cosignature key (tlog-cosignature).
func witnessKeyType(t byte) bool { return t == algCosignatureV1 || t == algMLDSA44 }

const witnessKeyTypes = "a witness key is an Ed25519 cosignature/v1 key (0x04) or an ML-DSA-44 cosignature key (0x06)"

// NewWitnessVerifier returns the cosignature verifier of a witness vkey:
// an Ed25519 cosignature/v1 key (0x04) or an ML-DSA-44 key (0x06), parsed
// as strictly as Parse does. It is what Verify uses for policy witnesses,
// for callers that check one witness's answer on its own.
func NewWitnessVerifier(s string) (note.Verifier, error) {
	k, err := parseVKey(s)
	if err != nil {
		return nil, err
	}
	if !witnessKeyType(k.typ) {
		return nil, fmt.Errorf("witness vkey %s has signature type %s; %s", s, typeName(k.typ), witnessKeyTypes)
	}
	return newCosignatureVerifier(s)
}

// cosignatureVerifier wraps a formats/note cosignature verifier (Ed25519
// or ML-DSA-44) with the checks it lacks. tlog-cosignature says the
// timestamp MUST NOT exceed 2^63-1, for both types. For ML-DSA-44, the
// signed cosigned_message holds the log origin in at most 255 bytes, and
// formats/note truncates a longer one's length to 8 bits instead of
// refusing it: such a cosignature does not verify here.
type cosignatureVerifier struct {
	note.Verifier
	mldsa bool
}

func (v cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) < 8 || sig[0]&0x80 != 0 {
		return false
	}
	if v.mldsa {
		origin, _, _ := bytes.Cut(msg, []byte("\n"))
		if len(origin) > maxCosignedString {
			return false
		}
	}
	return v.Verifier.Verify(msg, sig)
}

// newCosignatureVerifier returns the verifier of a witness vkey.
func newCosignatureVerifier(s string) (note.Verifier, error) {
	k, err := parseVKey(s)
	if err != nil {
		return nil, err
	}
	v, err := fnote.NewVerifierForCosignatureV1(s)
	if err != nil {
		return nil, err
	}
	return cosignatureVerifier{Verifier: v, mldsa: k.typ == algMLDSA44}, nil
}

// NewLogVerifier returns the checkpoint verifier of a log vkey: an Ed25519
// note key (0x01), a static-ct-api RFC 6962 key (0x05), or an ML-DSA-44
// cosignature key (0x06), which tlog-checkpoint recommends since 2026.
func NewLogVerifier(s string) (note.Verifier, error) {
	k, err := parseVKey(s)
	if err != nil {
		return nil, err
	}
	switch k.typ {
	case algEd25519:
		return note.NewVerifier(s)
	case algRFC6962STH:
		v, err := fnote.NewRFC6962Verifier(s)
		if err != nil {
			return nil, err
		}
		return rfc6962Verifier{v}, nil
	case algMLDSA44:
		// tlog-checkpoint: logs SHOULD sign with an ML-DSA-44 cosignature
		// (which does not cover extension lines).
		return newCosignatureVerifier(s)
	}
	return nil, fmt.Errorf("log vkey %s has signature type %s; a log key is an Ed25519 note key (0x01), an RFC 6962 key (0x05) or an ML-DSA-44 cosignature key (0x06)", s, typeName(k.typ))
}

// rfc6962Verifier checks the signature's shape before formats/note's
// verifier, which indexes into it unchecked: timestamp (8 bytes), hash and
// signature algorithms (2), length (2), signature.
type rfc6962Verifier struct{ note.Verifier }

func (v rfc6962Verifier) Verify(msg, sig []byte) bool {
	if len(sig) < 12 || int(binary.BigEndian.Uint16(sig[10:12])) != len(sig)-12 {
		return false
	}
	return v.Verifier.Verify(msg, sig)
}
