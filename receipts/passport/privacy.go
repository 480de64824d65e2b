package passport

// The vesperlog profile of the privacy modes of
// draft-wendt-stir-vesper-06 §5 ("Constraint Encodings"). The draft says
// what is compared (a value, its SHA-256, or a salted SHA-256 commitment)
// but not how a hash or commitment is written as a permitted value of
// JWTClaimConstraints, and later drafts dropped the modes; this file is
// our encoding, with golden vectors in testdata/privacy-modes.json.
//
//   - V_bytes is the claim value in RFC 8225 §9 canonical JSON
//     (CanonicalJSON; a string claim is its quoted JSON string).
//   - transparent: the value itself if V is a JSON string, else V_bytes
//     (plain RFC 8226/9118 semantics, which any verifier applies).
//   - hash: "sha-256:" + base64url(SHA-256(V_bytes)).
//   - commit: "commit:sha-256:" + base64url(SHA-256(S ‖ V_bytes)), then
//     optionally ":" + base64url(SHA-256(S)); S is a salt of at least 16
//     bytes that the holder discloses out of band (Disclosure), never in
//     the PASSporT.
//
// A permitted value is read as a hash or a commitment only if the prefix
// is followed by exactly 43 base64url characters (and, for a commitment,
// optionally ":" and 43 more); anything else is a transparent value.

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MinSalt is the shortest commitment salt accepted (128 bits, as -06 asks).
const MinSalt = 16

const (
	prefixHash   = "sha-256:"
	prefixCommit = "commit:sha-256:"
	digestB64Len = 43 // base64url of 32 bytes, unpadded
)

// ValueConstraint returns the transparent permitted value for claim value
// v: the string itself if v is a JSON string, else v's canonical JSON.
func ValueConstraint(v json.RawMessage) (string, error) {
	b, err := CanonicalJSON(v)
	if err != nil {
		return "", err
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	return string(b), nil
}

// HashConstraint returns the semi-private permitted value for claim value
// v: "sha-256:" and the base64url SHA-256 of its canonical JSON.
func HashConstraint(v json.RawMessage) (string, error) {
	b, err := CanonicalJSON(v)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(b)
	return prefixHash + base64.RawURLEncoding.EncodeToString(d[:]), nil
}

// CommitConstraint returns the private permitted value for claim value v
// and salt: "commit:sha-256:" and the base64url SHA-256 of salt followed
// by v's canonical JSON. (It writes no salt hash; verifiers accept one.)
func CommitConstraint(v json.RawMessage, salt []byte) (string, error) {
	if len(salt) < MinSalt {
		return "", fmt.Errorf("passport: commitment salt is %d bytes, at least %d", len(salt), MinSalt)
	}
	b, err := CanonicalJSON(v)
	if err != nil {
		return "", err
	}
	return prefixCommit + base64.RawURLEncoding.EncodeToString(commit(salt, b)), nil
}

func commit(salt, vbytes []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(vbytes)
	return h.Sum(nil)
}

// Disclosure is what a claim's holder discloses out of band for a
// committed claim: the salt, and the value if the PASSporT lacks it.
type Disclosure struct {
	Salt  []byte
	Value json.RawMessage
}

// permitted is a parsed permitted value.
type permitted struct {
	mode     string // "value", "hash", "commit"
	value    string // mode "value"
	digest   []byte // hash: SHA-256(V_bytes); commit: C
	saltHash []byte // commit, optional
}

func parsePermitted(p string) permitted {
	digest := func(s string) []byte {
		if len(s) != digestB64Len {
			return nil
		}
		b, err := b64url.DecodeString(s)
		if err != nil {
			return nil
		}
		return b
	}
	if rest, ok := strings.CutPrefix(p, prefixCommit); ok {
		c, sh, two := strings.Cut(rest, ":")
		if d := digest(c); d != nil {
			if !two {
				return permitted{mode: "commit", digest: d}
			}
			if s := digest(sh); s != nil {
				return permitted{mode: "commit", digest: d, saltHash: s}
			}
		}
	}
	if rest, ok := strings.CutPrefix(p, prefixHash); ok {
		if d := digest(rest); d != nil {
			return permitted{mode: "hash", digest: d}
		}
	}
	return permitted{mode: "value", value: p}
}

// matchOutcome is how a claim value fared against a permitted-values list.
type matchOutcome int

const (
	matchNone         matchOutcome = iota // no value matched
	matchValue                            // a transparent value matched
	matchHash                             // a hash matched
	matchCommit                           // a commitment matched with the disclosed salt
	matchCommitNoSalt                     // only commitments, and no salt to check them
	matchCommitWrong                      // a salt was disclosed and no commitment matched
)

// matchPermitted compares claim value v (canonical JSON) with values.
func matchPermitted(vbytes []byte, values []string, d *Disclosure) (matchOutcome, error) {
	transparent, err := ValueConstraint(vbytes)
	if err != nil {
		return matchNone, err
	}
	hash := sha256.Sum256(vbytes)
	commits := 0
	for _, s := range values {
		p := parsePermitted(s)
		switch p.mode {
		case "value":
			if p.value == transparent {
				return matchValue, nil
			}
		case "hash":
			if subtle.ConstantTimeCompare(p.digest, hash[:]) == 1 {
				return matchHash, nil
			}
		case "commit":
			commits++
			if d == nil || len(d.Salt) < MinSalt {
				continue
			}
			if subtle.ConstantTimeCompare(p.digest, commit(d.Salt, vbytes)) != 1 {
				continue
			}
			if p.saltHash != nil {
				sh := sha256.Sum256(d.Salt)
				if !bytes.Equal(p.saltHash, sh[:]) {
					continue
				}
			}
			return matchCommit, nil
		}
	}
	switch {
	case commits == 0:
		return matchNone, nil
	case d == nil:
		return matchCommitNoSalt, nil
	case len(d.Salt) < MinSalt:
		return matchCommitWrong, errors.New("the disclosed salt is shorter than 16 bytes")
	default:
		return matchCommitWrong, nil
	}
}
