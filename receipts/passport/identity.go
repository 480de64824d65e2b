package passport

import "errors"

// IdentityHeader is a SIP Identity header value (RFC 8224 §4.1).
type IdentityHeader struct {
	Token, Info, Alg, PPT string
	Params                map[string]string // other generic-params, kept
}

// ParseIdentityHeader decodes an Identity header value, with or without the
// "Identity:" name.
func ParseIdentityHeader(v string) (*IdentityHeader, error) { return nil, errors.ErrUnsupported }

// String returns h as an Identity header value (without the name).
func (h *IdentityHeader) String() string { return "" }

// ParseAny parses s as a PASSporT or an Identity header value; the header
// is nil for a bare PASSporT.
func ParseAny(s string) (*PASSporT, *IdentityHeader, error) { return nil, nil, errors.ErrUnsupported }
