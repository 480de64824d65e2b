package passport

import (
	"crypto"
	"encoding/json"
	"errors"
	"time"
)

// Limits and defaults.
const (
	MaxToken         = 128 << 10 // a PASSporT, x5c included
	MaxRequest       = 256 << 10 // a verify-passport request body
	DefaultFreshness = 60 * time.Second
)

// Header is a PASSporT's protected header (RFC 8225 §4).
type Header struct {
	Alg string   `json:"alg"`
	Typ string   `json:"typ"`
	PPT string   `json:"ppt,omitempty"`
	X5U string   `json:"x5u,omitempty"`
	X5C [][]byte `json:"x5c,omitempty"` // DER, leaf first
	// Canonical says whether the header and payload were in RFC 8225 §9
	// form (sorted keys, no whitespace); verifiers report it, not refuse.
	Canonical bool `json:"canonical"`
}

// Orig is the orig claim: exactly one of TN and URI is set.
type Orig struct{ TN, URI string }

// Dest is the dest claim: each member is an array, at least one is set.
type Dest struct{ TN, URI []string }

// Claims are a PASSporT's claims (RFC 8225 §5, RFC 8588 §4).
type Claims struct {
	Orig Orig
	Dest Dest
	IAT  int64
	// Attest and OrigID are SHAKEN's (RFC 8588).
	Attest, OrigID string
	// Other holds every other claim (rcd, crn, …) verbatim.
	Other map[string]json.RawMessage
}

// PASSporT is a parsed token; Raw is the token as given.
type PASSporT struct {
	Header Header
	Claims Claims
	Raw    string
}

// Parse decodes a full-form PASSporT strictly, without checking its
// signature.
func Parse(token string) (*PASSporT, error) { return nil, errors.ErrUnsupported }

// SignOptions say how Sign signs.
type SignOptions struct {
	Key   crypto.Signer // P-256
	Chain [][]byte      // DER, leaf first → x5c (omitted with NoX5C)
	X5U   string
	NoX5C bool
	PPT   string // "", "shaken", "rcd", "rsp"
}

// Sign returns c as a full-form PASSporT signed with ES256, its payload in
// RFC 8225 §9 form.
func Sign(c Claims, o SignOptions) (string, error) { return "", errors.ErrUnsupported }
