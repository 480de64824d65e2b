package receipts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrKeyWindow is returned by Verify for a receipt whose iat lies outside
// the validity window of the key that signed it: before the key started
// signing, or after it was retired. The receipt is not to be trusted; a
// verifier that pinned the key set long ago should fetch it again first.
var ErrKeyWindow = errors.New("receipt was issued outside its key's validity window")

// Key is one receipt key of a KeySet with its validity window.
//
// In JSON it is the key's JWK with two more members, as OpenID Federation's
// historical keys carry them:
//
//	"nbf": NumericDate (seconds) from which the key signs receipts
//	"exp": NumericDate at which the key was retired; a key with "exp" is retired
//
// A key without "nbf" (from a history older than windows) has no start; a
// key without "exp" is current. go-jose's JSONWebKey drops members it does
// not know, so Key marshals and parses the window itself.
type Key struct {
	jose.JSONWebKey
	NotBefore time.Time // zero: no start
	Expires   time.Time // zero: current (not retired)
}

// KeySet is a JWKS (RFC 7517) of receipt keys with their windows: what a
// log publishes at /.well-known/jwks.json, keeps as its receipt key history,
// and a verifier pins. Retired keys stay in it, so that old receipts still
// verify.
type KeySet struct {
	Keys []Key `json:"keys"`
}

// NewKeySet returns a KeySet of keys with no windows: each verifies a
// receipt of any iat.
func NewKeySet(keys ...jose.JSONWebKey) *KeySet {
	s := &KeySet{}
	for _, k := range keys {
		s.Keys = append(s.Keys, Key{JSONWebKey: k})
	}
	return s
}

// Key returns the keys of s with the given kid (as go-jose's JSONWebKeySet.Key).
func (s *KeySet) Key(kid string) []Key {
	var out []Key
	for _, k := range s.Keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// ParseKeySet decodes a JWKS with windows. It accepts one without any
// (every key then has no window).
func ParseKeySet(b []byte) (*KeySet, error) {
	var s KeySet
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Retired reports whether k was retired (has an exp).
func (k Key) Retired() bool { return !k.Expires.IsZero() }

// Covers reports whether a receipt issued at iat lies within k's window,
// both ends included: nbf <= iat (if k has an nbf) and iat <= exp (if k
// is retired).
func (k Key) Covers(iat time.Time) bool {
	if !k.NotBefore.IsZero() && iat.Before(k.NotBefore) {
		return false
	}
	if !k.Expires.IsZero() && iat.After(k.Expires) {
		return false
	}
	return true
}

// Window describes k's window for people: "[nbf, exp]", with "-" for an
// end it does not have and "current" for a key not retired.
func (k Key) Window() string {
	from, until := "-", "current"
	if !k.NotBefore.IsZero() {
		from = k.NotBefore.UTC().Format(time.RFC3339)
	}
	if !k.Expires.IsZero() {
		until = k.Expires.UTC().Format(time.RFC3339)
	}
	return "[" + from + ", " + until + "]"
}

// MarshalJSON is the key's JWK as go-jose encodes it, with "nbf" and "exp"
// appended when k has them.
func (k Key) MarshalJSON() ([]byte, error) {
	b, err := k.JSONWebKey.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if k.NotBefore.IsZero() && k.Expires.IsZero() {
		return b, nil
	}
	// go-jose always writes an object with at least kty, and never a
	// member named nbf or exp: appending before its "}" is a merge.
	b = bytes.TrimRight(b, " \n")
	if len(b) < 2 || b[len(b)-1] != '}' || b[len(b)-2] == '{' {
		return nil, fmt.Errorf("receipt key %s: unexpected JWK encoding", k.KeyID)
	}
	b = b[:len(b)-1]
	if !k.NotBefore.IsZero() {
		b = append(b, `,"nbf":`...)
		b = strconv.AppendInt(b, k.NotBefore.Unix(), 10)
	}
	if !k.Expires.IsZero() {
		b = append(b, `,"exp":`...)
		b = strconv.AppendInt(b, k.Expires.Unix(), 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON parses a JWK with an optional window. The window members
// must be non-negative integers (NumericDate in whole seconds, as written
// here), and exp must not be before nbf.
func (k *Key) UnmarshalJSON(b []byte) error {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return err
	}
	var w struct {
		NBF json.RawMessage `json:"nbf"`
		EXP json.RawMessage `json:"exp"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	nbf, err := numericDate("nbf", w.NBF)
	if err != nil {
		return fmt.Errorf("receipt key %s: %w", jwk.KeyID, err)
	}
	exp, err := numericDate("exp", w.EXP)
	if err != nil {
		return fmt.Errorf("receipt key %s: %w", jwk.KeyID, err)
	}
	if !nbf.IsZero() && !exp.IsZero() && exp.Before(nbf) {
		return fmt.Errorf("receipt key %s: exp %d is before nbf %d", jwk.KeyID, exp.Unix(), nbf.Unix())
	}
	*k = Key{JSONWebKey: jwk, NotBefore: nbf, Expires: exp}
	return nil
}

// numericDate parses a window member: absent is the zero time.
func numericDate(name string, raw json.RawMessage) (time.Time, error) {
	if raw == nil {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 || n > maxNumericDate {
		return time.Time{}, fmt.Errorf("%s %s is not a NumericDate in whole seconds", name, raw)
	}
	return time.Unix(n, 0), nil
}

// maxNumericDate (year 9999) keeps a window end representable and printable.
const maxNumericDate = 253402300799
