package passport

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/vesperlog/vesperlog/log/stict"
)

// Limits and defaults.
const (
	MaxToken         = 128 << 10 // a PASSporT, x5c included
	MaxRequest       = 256 << 10 // a verify-passport request body
	DefaultFreshness = 60 * time.Second

	maxURI   = 2048 // an orig or dest URI, an x5u or info URL
	maxDests = 64   // members of each dest array
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

	payload []byte // the decoded payload, as signed
}

// Payload returns the PASSporT's claims as signed (JSON).
func (p *PASSporT) Payload() json.RawMessage { return slices.Clone(p.payload) }

var (
	tnPattern   = regexp.MustCompile(`^[0-9#*]{1,15}$`)
	uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	b64url      = base64.RawURLEncoding.Strict()
	b64std      = base64.StdEncoding.Strict()
)

// Parse decodes a full-form PASSporT (RFC 8225 §7: a JWS in compact
// serialization) strictly, without checking its signature: three
// base64url segments without padding; a header object whose alg, typ,
// ppt, x5u and x5c have the right types (x5c standard base64 DER, at most
// stict.MaxChain) and no crit (ErrHeader: PASSporT defines no critical
// extension); a claims object with orig (one of tn or uri), dest (tn
// and/or uri arrays), iat (an integer), SHAKEN's attest (A, B or C) and
// origid (a UUID) if present, and any other claim kept verbatim. Duplicate
// keys, floats and more than MaxToken bytes are refused. A compact-form
// token (empty header and payload) is refused: it needs the SIP request.
func Parse(token string) (*PASSporT, error) {
	if len(token) > MaxToken {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: a JWS in compact serialization has 3 dot-separated parts, not %d", ErrMalformed, len(parts))
	}
	if parts[0] == "" && parts[1] == "" {
		return nil, fmt.Errorf("%w: compact form needs the SIP request; send the full form", ErrMalformed)
	}
	hb, err := b64url.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url without padding: %v", ErrMalformed, err)
	}
	pb, err := b64url.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url without padding: %v", ErrMalformed, err)
	}
	// An empty signature is left to the header check (alg none) and the
	// signature check.
	if _, err := b64url.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url without padding", ErrMalformed)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	c, err := parseClaims(pb)
	if err != nil {
		return nil, err
	}
	ch, err1 := CanonicalJSON(json.RawMessage(hb))
	cp, err2 := CanonicalJSON(json.RawMessage(pb))
	h.Canonical = err1 == nil && err2 == nil && bytes.Equal(ch, hb) && bytes.Equal(cp, pb)
	return &PASSporT{Header: *h, Claims: *c, Raw: token, payload: pb}, nil
}

func parseHeader(b []byte) (*Header, error) {
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	var h Header
	for k, v := range raw {
		var err error
		switch k {
		case "alg":
			err = json.Unmarshal(v, &h.Alg)
		case "typ":
			err = json.Unmarshal(v, &h.Typ)
		case "ppt":
			err = json.Unmarshal(v, &h.PPT)
		case "x5u":
			if err = json.Unmarshal(v, &h.X5U); err == nil {
				err = checkURL(h.X5U, "https")
			}
		case "x5c":
			var certs []string
			if err = json.Unmarshal(v, &certs); err != nil {
				break
			}
			if len(certs) == 0 || len(certs) > stict.MaxChain {
				err = fmt.Errorf("%d certificates (1 to %d)", len(certs), stict.MaxChain)
				break
			}
			for i, s := range certs {
				der, e := b64std.DecodeString(s)
				if e != nil || len(der) == 0 {
					err = fmt.Errorf("certificate %d is not standard base64 (RFC 7515 §4.1.6)", i)
					break
				}
				h.X5C = append(h.X5C, der)
			}
		case "crit":
			return nil, fmt.Errorf("%w: crit: PASSporT defines no critical header extension", ErrHeader)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: header %s: %v", ErrMalformed, k, err)
		}
	}
	if h.Alg == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	return &h, nil
}

func checkURL(s, scheme string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > maxURI || u.Scheme != scheme || u.Host == "" {
		return fmt.Errorf("%q is not an %s URL of at most %d bytes", s, scheme, maxURI)
	}
	return nil
}

func parseClaims(b []byte) (*Claims, error) {
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	var c Claims
	for k, v := range raw {
		var err error
		switch k {
		case "orig":
			c.Orig, err = parseOrig(v)
		case "dest":
			c.Dest, err = parseDest(v)
		case "iat":
			err = parseIAT(v, &c.IAT)
		case "attest":
			if err = json.Unmarshal(v, &c.Attest); err == nil && c.Attest != "A" && c.Attest != "B" && c.Attest != "C" {
				err = fmt.Errorf("%q is not A, B or C (RFC 8588 §4)", c.Attest)
			}
		case "origid":
			if err = json.Unmarshal(v, &c.OrigID); err == nil && !uuidPattern.MatchString(c.OrigID) {
				err = fmt.Errorf("%q is not a UUID (RFC 8588 §4)", c.OrigID)
			}
		case "rcd":
			// RFC 9795: an object with at least the display name nam;
			// the rest is kept as signed.
			var rcd map[string]json.RawMessage
			var nam string
			if err = json.Unmarshal(v, &rcd); err != nil || rcd == nil || json.Unmarshal(rcd["nam"], &nam) != nil {
				err = errors.New(`want an object with a string "nam" (RFC 9795)`)
				break
			}
			fallthrough
		default:
			if c.Other == nil {
				c.Other = make(map[string]json.RawMessage)
			}
			c.Other[k] = slices.Clone(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: claim %s: %v", ErrMalformed, k, err)
		}
	}
	for _, req := range []string{"orig", "dest", "iat"} {
		if _, ok := raw[req]; !ok {
			return nil, fmt.Errorf("%w: no %s claim (RFC 8225 §5)", ErrMalformed, req)
		}
	}
	return &c, nil
}

func parseOrig(v json.RawMessage) (Orig, error) {
	var m map[string]string
	if err := json.Unmarshal(v, &m); err != nil || len(m) != 1 {
		return Orig{}, errors.New(`want an object with exactly one of "tn" or "uri", a string`)
	}
	var o Orig
	switch {
	case m["tn"] != "":
		o.TN = m["tn"]
		if !tnPattern.MatchString(o.TN) {
			return Orig{}, fmt.Errorf("tn %q is not 1 to 15 of 0-9, # and * (RFC 8224 §8.3 canonical form)", o.TN)
		}
	case m["uri"] != "":
		o.URI = m["uri"]
		if len(o.URI) > maxURI {
			return Orig{}, fmt.Errorf("uri is longer than %d bytes", maxURI)
		}
	default:
		return Orig{}, errors.New(`want "tn" or "uri", non-empty`)
	}
	return o, nil
}

func parseDest(v json.RawMessage) (Dest, error) {
	var m map[string][]string
	if err := json.Unmarshal(v, &m); err != nil {
		return Dest{}, errors.New(`want an object of arrays of strings ("tn", "uri")`)
	}
	var d Dest
	for k, vals := range m {
		if len(vals) == 0 || len(vals) > maxDests {
			return Dest{}, fmt.Errorf("%s has %d members (1 to %d)", k, len(vals), maxDests)
		}
		switch k {
		case "tn":
			for _, tn := range vals {
				if !tnPattern.MatchString(tn) {
					return Dest{}, fmt.Errorf("tn %q is not 1 to 15 of 0-9, # and *", tn)
				}
			}
			d.TN = vals
		case "uri":
			for _, u := range vals {
				if u == "" || len(u) > maxURI {
					return Dest{}, fmt.Errorf("a uri is empty or longer than %d bytes", maxURI)
				}
			}
			d.URI = vals
		default:
			return Dest{}, fmt.Errorf("unknown member %q (tn, uri)", k)
		}
	}
	if d.TN == nil && d.URI == nil {
		return Dest{}, errors.New("no tn or uri")
	}
	return d, nil
}

func parseIAT(v json.RawMessage, iat *int64) error {
	s := string(v)
	// A NumericDate integer (RFC 8588bis fixes an example's quoted iat).
	if s == "" || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return fmt.Errorf("%s is not a non-negative integer NumericDate", s)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || !n.IsInt64() {
		return fmt.Errorf("%s is out of range", s)
	}
	*iat = n.Int64()
	return nil
}

// SignOptions say how Sign signs.
type SignOptions struct {
	Key   crypto.Signer // P-256
	Chain [][]byte      // DER, leaf first → x5c (omitted with NoX5C)
	X5U   string
	NoX5C bool
	PPT   string // "", "shaken", "rcd", "rsp"
}

// Sign returns c as a full-form PASSporT signed with ES256 by o.Key: its
// header and payload in RFC 8225 §9 form (both written by CanonicalJSON,
// each dest array sorted), typ "passport", x5c in standard base64, the
// signature R||S (RFC 7518 §3.4).
func Sign(c Claims, o SignOptions) (string, error) {
	pub, ok := o.Key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return "", errors.New("passport: the signing key is not ECDSA P-256 (ES256)")
	}
	for _, k := range []string{"orig", "dest", "iat", "attest", "origid"} {
		if _, ok := c.Other[k]; ok {
			return "", fmt.Errorf("passport: claim %s belongs in its Claims field, not in Other", k)
		}
	}
	payload, err := c.canonical()
	if err != nil {
		return "", err
	}
	// Validate what we sign as a verifier would read it.
	if _, err := parseClaims(payload); err != nil {
		return "", err
	}
	h := map[string]any{"alg": "ES256", "typ": "passport"}
	if o.PPT != "" {
		h["ppt"] = o.PPT
	}
	if o.X5U != "" {
		if err := checkURL(o.X5U, "https"); err != nil {
			return "", fmt.Errorf("passport: x5u: %w", err)
		}
		h["x5u"] = o.X5U
	}
	if !o.NoX5C {
		if len(o.Chain) == 0 {
			return "", errors.New("passport: no certificate chain for x5c")
		}
		var x5c []string
		for _, der := range o.Chain {
			x5c = append(x5c, base64.StdEncoding.EncodeToString(der))
		}
		h["x5c"] = x5c
	}
	// The header is written here, not by go-jose, whose JSON encoder
	// escapes <, > and & (an x5u with a query string would then not be in
	// §9 form). go-jose verifies what this writes (Verify, and npm jose in
	// interop_test.go).
	header, err := CanonicalJSON(h)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := opaque{o.Key, pub}.SignPayload([]byte(in), jose.ES256)
	if err != nil {
		return "", fmt.Errorf("passport: %w", err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// canonical returns c's payload in RFC 8225 §9 form.
func (c *Claims) canonical() ([]byte, error) {
	m := make(map[string]any, len(c.Other)+5)
	for k, v := range c.Other {
		m[k] = v
	}
	switch {
	case c.Orig.TN != "" && c.Orig.URI == "":
		m["orig"] = map[string]string{"tn": c.Orig.TN}
	case c.Orig.URI != "" && c.Orig.TN == "":
		m["orig"] = map[string]string{"uri": c.Orig.URI}
	default:
		return nil, errors.New("passport: orig needs exactly one of tn and uri")
	}
	dest := map[string][]string{}
	if len(c.Dest.TN) > 0 {
		dest["tn"] = slices.Sorted(slices.Values(c.Dest.TN))
	}
	if len(c.Dest.URI) > 0 {
		dest["uri"] = slices.Sorted(slices.Values(c.Dest.URI))
	}
	m["dest"] = dest
	m["iat"] = c.IAT
	if c.Attest != "" {
		m["attest"] = c.Attest
	}
	if c.OrigID != "" {
		m["origid"] = c.OrigID
	}
	return CanonicalJSON(m)
}

// opaque adapts a crypto.Signer (a key in an HSM, say) to go-jose's
// OpaqueSigner: ES256 wants R||S, 32 bytes each (RFC 7518 §3.4).
type opaque struct {
	key crypto.Signer
	pub *ecdsa.PublicKey
}

func (o opaque) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: o.pub, Algorithm: string(jose.ES256)}
}

func (o opaque) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{jose.ES256} }

func (o opaque) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.ES256 {
		return nil, fmt.Errorf("passport: algorithm %s, only ES256", alg)
	}
	d := sha256.Sum256(payload)
	der, err := o.key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	r, s, err := parseECDSASig(der)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func parseECDSASig(der []byte) (r, s *big.Int, err error) {
	r, s = new(big.Int), new(big.Int)
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(s) || !seq.Empty() {
		return nil, nil, errors.New("passport: the signer returned a malformed ECDSA signature")
	}
	return r, s, nil
}
