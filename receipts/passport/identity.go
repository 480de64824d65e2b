package passport

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// IdentityHeader is a SIP Identity header value (RFC 8224 §4.1):
//
//	Identity: <token>;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken
//
// Params holds the other generic-params (name lowercased), kept and
// ignored; a parameter without a value has "".
type IdentityHeader struct {
	Token, Info, Alg, PPT string
	Params                map[string]string
}

const (
	maxIdentity      = MaxToken + 8<<10
	maxIdentityParam = 32
)

// ParseIdentityHeader decodes an Identity header value strictly per
// RFC 8224 §4.1 with errata 6499 (the token is base64url characters and
// dots), with or without the "Identity:" name (or its compact form "y:"):
// info, if present, is an angle-bracketed absolute URI; alg and ppt are
// tokens; other parameters are generic-params; whitespace around ";" and
// "=" is allowed (SIP LWS); no parameter may repeat. A missing info is
// left to the verifier (VESPER PASSporTs carry x5c).
func ParseIdentityHeader(v string) (*IdentityHeader, error) {
	if len(v) > maxIdentity {
		return nil, fmt.Errorf("%w: Identity header is %d bytes, at most %d", ErrMalformed, len(v), maxIdentity)
	}
	s := strings.TrimSpace(v)
	if name, rest, ok := strings.Cut(s, ":"); ok && (strings.EqualFold(strings.TrimSpace(name), "identity") || strings.EqualFold(strings.TrimSpace(name), "y")) {
		s = strings.TrimSpace(rest)
	}
	tok, rest, semi := strings.Cut(s, ";")
	if semi && strings.TrimSpace(rest) == "" {
		return nil, fmt.Errorf("%w: Identity header ends with ';'", ErrMalformed)
	}
	tok = strings.TrimRight(tok, " \t")
	if tok == "" || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
		return nil, fmt.Errorf("%w: the Identity header's value is not a JWS of base64url characters and dots (RFC 8224 §4.1, errata 6499)", ErrMalformed)
	}
	h := &IdentityHeader{Token: tok}
	seen := map[string]bool{}
	for rest != "" {
		var name, val string
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, "=;")
		if i < 0 {
			name, rest = rest, ""
		} else {
			name = rest[:i]
		}
		name = strings.ToLower(strings.TrimRight(name, " \t"))
		if !isToken(name) {
			return nil, fmt.Errorf("%w: Identity header parameter %q is not a token", ErrMalformed, name)
		}
		hasVal := i >= 0 && rest[i] == '='
		if i >= 0 {
			rest = rest[i+1:]
		}
		if hasVal {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "<") {
				end := strings.IndexByte(rest, '>')
				if end < 0 {
					return nil, fmt.Errorf("%w: Identity header parameter %s: no closing '>'", ErrMalformed, name)
				}
				val, rest = rest[:end+1], rest[end+1:]
			} else if strings.HasPrefix(rest, `"`) {
				end := strings.IndexByte(rest[1:], '"')
				if end < 0 {
					return nil, fmt.Errorf("%w: Identity header parameter %s: no closing quote", ErrMalformed, name)
				}
				val, rest = rest[:end+2], rest[end+2:]
			} else {
				j := strings.IndexByte(rest, ';')
				if j < 0 {
					j = len(rest)
				}
				val, rest = strings.TrimRight(rest[:j], " \t"), rest[j:]
			}
			rest = strings.TrimLeft(rest, " \t")
			if rest != "" && rest[0] != ';' {
				return nil, fmt.Errorf("%w: Identity header parameter %s: unexpected %q", ErrMalformed, name, rest)
			}
			rest = strings.TrimPrefix(rest, ";")
		} else if i >= 0 && rest == "" {
			return nil, fmt.Errorf("%w: Identity header ends with ';'", ErrMalformed)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: Identity header parameter %s repeated", ErrMalformed, name)
		}
		seen[name] = true
		if len(seen) > maxIdentityParam {
			return nil, fmt.Errorf("%w: more than %d Identity header parameters", ErrMalformed, maxIdentityParam)
		}
		switch name {
		case "info":
			u, ok := strings.CutPrefix(val, "<")
			u, ok2 := strings.CutSuffix(u, ">")
			pu, err := url.Parse(u)
			if !ok || !ok2 || err != nil || !pu.IsAbs() || len(u) > maxURI {
				return nil, fmt.Errorf("%w: Identity header info %q is not an absolute URI in angle brackets", ErrMalformed, val)
			}
			h.Info = u
		case "alg", "ppt":
			if !isToken(val) {
				return nil, fmt.Errorf("%w: Identity header %s %q is not a token", ErrMalformed, name, val)
			}
			if name == "alg" {
				h.Alg = val
			} else {
				h.PPT = val
			}
		default:
			if h.Params == nil {
				h.Params = map[string]string{}
			}
			h.Params[name] = val
		}
	}
	return h, nil
}

// isToken says whether s is a SIP token (RFC 3261 §25.1).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// String returns h as an Identity header value (without the name): the
// token, then info, alg, ppt and the other parameters sorted by name.
func (h *IdentityHeader) String() string {
	var b strings.Builder
	b.WriteString(h.Token)
	if h.Info != "" {
		b.WriteString(";info=<" + h.Info + ">")
	}
	if h.Alg != "" {
		b.WriteString(";alg=" + h.Alg)
	}
	if h.PPT != "" {
		b.WriteString(";ppt=" + h.PPT)
	}
	for _, k := range slices.Sorted(maps.Keys(h.Params)) {
		b.WriteString(";" + k)
		if v := h.Params[k]; v != "" {
			b.WriteString("=" + v)
		}
	}
	return b.String()
}

// ParseAny parses s as a PASSporT or an Identity header value (which has
// parameters or the header name); the header is nil for a bare PASSporT.
// The header's alg and ppt, when present, must equal the PASSporT's
// (ErrHeader).
func ParseAny(s string) (*PASSporT, *IdentityHeader, error) {
	t := strings.TrimSpace(s)
	if !strings.ContainsAny(t, ";:") {
		p, err := Parse(t)
		return p, nil, err
	}
	h, err := ParseIdentityHeader(t)
	if err != nil {
		return nil, nil, err
	}
	p, err := Parse(h.Token)
	if err != nil {
		return nil, nil, err
	}
	if h.Alg != "" && h.Alg != p.Header.Alg {
		return nil, nil, fmt.Errorf("%w: Identity header alg=%s, PASSporT alg %s", ErrHeader, h.Alg, p.Header.Alg)
	}
	if h.PPT != "" && h.PPT != p.Header.PPT {
		return nil, nil, fmt.Errorf("%w: Identity header ppt=%s, PASSporT ppt %q", ErrHeader, h.PPT, p.Header.PPT)
	}
	return p, h, nil
}
