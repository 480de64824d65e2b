package vesper

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// SD-JWT constants (RFC 9901).
const (
	// HashAlg is the only _sd_alg this package issues and accepts.
	HashAlg = "sha-256"
	// KBType is the typ of a Key Binding JWT.
	KBType = "kb+jwt"
	// saltBytes is the salt entropy: 128 bits, as RFC 9901 §9.3 recommends.
	saltBytes = 16
)

// Errors of SD-JWT processing, each wrapped with detail.
var (
	ErrMalformed  = errors.New("malformed SD-JWT")
	ErrIssuer     = errors.New("issuer key is not trusted")
	ErrSignature  = errors.New("issuer signature does not verify")
	ErrDisclosure = errors.New("invalid disclosure")
	ErrKeyBinding = errors.New("key binding does not verify")
	ErrExpired    = errors.New("token is not valid at this time")
	ErrClaims     = errors.New("token claims are not acceptable")
	ErrReceipt    = errors.New("transparency receipt does not verify")
	ErrNotLogged  = errors.New("the receipt's entry is not this token's logged digest")
)

var b64 = base64.RawURLEncoding

// algorithms are the JWS algorithms accepted for issuer and KB JWTs.
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// Frame says which claims of an object or array are selectively
// disclosable. Its JSON form mirrors the claims:
//
//	{"_sd": ["address", "contact_email"],   names (in an object) or indexes (in an array)
//	 "_decoys": 2,                           decoy digests to add at this level
//	 "address": {"_sd": ["street_address"]}, frames of nested values, applied first
//	 "rcd": {"_sd": [0]}}
//
// A name both listed in _sd and framed gives a recursive disclosure: the
// value's own disclosable parts are hidden inside the disclosure of the whole.
type Frame struct {
	SD     []any // string names or int indexes
	Decoys int
	Nested map[string]*Frame
}

// UnmarshalJSON decodes the JSON form of a frame.
func (f *Frame) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	*f = Frame{Nested: map[string]*Frame{}}
	for k, v := range raw {
		switch k {
		case "_sd":
			var items []any
			d := json.NewDecoder(bytes.NewReader(v))
			d.UseNumber()
			if err := d.Decode(&items); err != nil {
				return fmt.Errorf("frame _sd: %w", err)
			}
			for _, it := range items {
				switch x := it.(type) {
				case string:
					f.SD = append(f.SD, x)
				case json.Number:
					i, err := strconv.Atoi(x.String())
					if err != nil || i < 0 {
						return fmt.Errorf("frame _sd: %s is not an array index", x)
					}
					f.SD = append(f.SD, i)
				default:
					return fmt.Errorf("frame _sd: %v is neither a name nor an index", it)
				}
			}
		case "_decoys":
			if err := json.Unmarshal(v, &f.Decoys); err != nil || f.Decoys < 0 || f.Decoys > 100 {
				return fmt.Errorf("frame _decoys must be a count from 0 to 100")
			}
		default:
			var n Frame
			if err := n.UnmarshalJSON(v); err != nil {
				return fmt.Errorf("frame %q: %w", k, err)
			}
			f.Nested[k] = &n
		}
	}
	return nil
}

// MarshalJSON encodes the JSON form of a frame.
func (f *Frame) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(f.Nested)+2)
	for k, n := range f.Nested {
		m[k] = n
	}
	if len(f.SD) > 0 {
		m["_sd"] = f.SD
	}
	if f.Decoys > 0 {
		m["_decoys"] = f.Decoys
	}
	return json.Marshal(m)
}

// conceal applies frame f to value v: it returns the value with its
// disclosable parts replaced by digests, and the disclosures made.
func conceal(v any, f *Frame) (any, []string, error) {
	if f == nil {
		return v, nil, nil
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		obj := make(map[string]any, len(x))
		for k, val := range x {
			obj[k] = val
		}
		for k, nf := range f.Nested {
			child, ok := obj[k]
			if !ok {
				return nil, nil, fmt.Errorf("frame names %q, which the claims do not have", k)
			}
			c, ds, err := conceal(child, nf)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", k, err)
			}
			obj[k], out = c, append(out, ds...)
		}
		var digests []string
		for _, it := range f.SD {
			name, ok := it.(string)
			if !ok {
				return nil, nil, fmt.Errorf("frame lists index %v for an object", it)
			}
			val, ok := obj[name]
			if !ok {
				return nil, nil, fmt.Errorf("frame makes %q disclosable, which the claims do not have", name)
			}
			if name == "_sd" || name == "..." {
				return nil, nil, fmt.Errorf("claim name %q is reserved", name)
			}
			d, err := newDisclosure(name, val)
			if err != nil {
				return nil, nil, err
			}
			delete(obj, name)
			digests = append(digests, digest(d))
			out = append(out, d)
		}
		for i := 0; i < f.Decoys; i++ {
			digests = append(digests, decoy())
		}
		if len(digests) > 0 {
			// Sorted, so the order reveals nothing of the claims' order.
			sort.Strings(digests)
			obj["_sd"] = digests
		}
		return obj, out, nil
	case []any:
		arr := append([]any(nil), x...)
		for k, nf := range f.Nested {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(arr) {
				return nil, nil, fmt.Errorf("frame names element %q of an array of %d", k, len(arr))
			}
			c, ds, err := conceal(arr[i], nf)
			if err != nil {
				return nil, nil, fmt.Errorf("[%d]: %w", i, err)
			}
			arr[i], out = c, append(out, ds...)
		}
		for _, it := range f.SD {
			i, ok := it.(int)
			if !ok || i >= len(arr) {
				return nil, nil, fmt.Errorf("frame lists %v for an array of %d", it, len(arr))
			}
			if m, isObj := arr[i].(map[string]any); isObj && len(m) == 1 && m["..."] != nil {
				return nil, nil, fmt.Errorf("array element %d listed twice", i)
			}
			d, err := newDisclosure("", arr[i])
			if err != nil {
				return nil, nil, err
			}
			arr[i] = map[string]any{"...": digest(d)}
			out = append(out, d)
		}
		for i := 0; i < f.Decoys; i++ {
			pos, err := rand.Int(rand.Reader, big.NewInt(int64(len(arr)+1)))
			if err != nil {
				return nil, nil, err
			}
			p := int(pos.Int64())
			arr = append(arr[:p], append([]any{map[string]any{"...": decoy()}}, arr[p:]...)...)
		}
		return arr, out, nil
	}
	return nil, nil, fmt.Errorf("frame applied to a %T, which is neither an object nor an array", v)
}

// newDisclosure returns the disclosure of a property (name set) or an
// array element (name empty), with a fresh salt.
func newDisclosure(name string, value any) (string, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	arr := []any{b64.EncodeToString(salt)}
	if name != "" {
		arr = append(arr, name)
	}
	arr = append(arr, value)
	b, err := marshal(arr)
	if err != nil {
		return "", fmt.Errorf("encoding disclosure: %w", err)
	}
	return b64.EncodeToString(b), nil
}

// digest is the SD-JWT digest of a disclosure: SHA-256 over its ASCII
// base64url form, base64url-encoded.
func digest(disclosure string) string {
	h := sha256.Sum256([]byte(disclosure))
	return b64.EncodeToString(h[:])
}

func decoy() string {
	r := make([]byte, 32)
	_, _ = rand.Read(r)
	h := sha256.Sum256(r)
	return b64.EncodeToString(h[:])
}

// marshal encodes JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// sdJWT is a parsed compact SD-JWT or SD-JWT+KB.
type sdJWT struct {
	jwt         string
	disclosures []string
	kb          string // "" for an SD-JWT
}

// maxTokenSize bounds what Verify and Present accept.
const maxTokenSize = 256 << 10

func parseSDJWT(s string) (*sdJWT, error) {
	if len(s) > maxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(s), maxTokenSize)
	}
	parts := strings.Split(s, "~")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: no '~' after the issuer-signed JWT", ErrMalformed)
	}
	t := &sdJWT{jwt: parts[0], disclosures: parts[1 : len(parts)-1], kb: parts[len(parts)-1]}
	for i, d := range t.disclosures {
		if d == "" {
			return nil, fmt.Errorf("%w: disclosure %d is empty", ErrMalformed, i)
		}
	}
	return t, nil
}

// presentation is the SD-JWT part that sd_hash covers: the JWT and the
// disclosures, each followed by '~'.
func (t *sdJWT) presentation() string {
	var b strings.Builder
	b.WriteString(t.jwt + "~")
	for _, d := range t.disclosures {
		b.WriteString(d + "~")
	}
	return b.String()
}

// decodeJSON decodes a JSON object keeping numbers exact.
func decodeJSON(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after JSON")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// disclosed is one disclosure, decoded, and where it sits.
type disclosed struct {
	raw   string
	name  string // "" for an array element
	value any
	path  string // dotted path of the claim it discloses
}

// process runs RFC 9901 §7.1 step 3 to 5 on the issuer-signed payload: it
// replaces digests by the claims of the given disclosures and removes the
// rest. Every disclosure must be referenced exactly once; every digest may
// appear at most once.
func process(payload map[string]any, disclosures []string) (map[string]any, []disclosed, error) {
	byDigest := make(map[string]string, len(disclosures))
	for _, d := range disclosures {
		h := digest(d)
		if _, dup := byDigest[h]; dup {
			return nil, nil, fmt.Errorf("%w: the same disclosure is sent twice", ErrDisclosure)
		}
		byDigest[h] = d
	}
	p := &processor{byDigest: byDigest, seen: map[string]bool{}}
	if alg, ok := payload["_sd_alg"]; ok && alg != HashAlg {
		return nil, nil, fmt.Errorf("%w: _sd_alg %v, only %q is accepted", ErrMalformed, alg, HashAlg)
	}
	delete(payload, "_sd_alg")
	out, err := p.walk(payload, "")
	if err != nil {
		return nil, nil, err
	}
	if len(p.used) != len(disclosures) {
		return nil, nil, fmt.Errorf("%w: %d disclosures are not referenced by the token", ErrDisclosure, len(disclosures)-len(p.used))
	}
	return out.(map[string]any), p.used, nil
}

type processor struct {
	byDigest map[string]string
	seen     map[string]bool // digests met in the payload
	used     []disclosed
}

func (p *processor) claim(h, path string) (string, bool, error) {
	if p.seen[h] {
		return "", false, fmt.Errorf("%w: digest %s appears more than once", ErrDisclosure, h)
	}
	p.seen[h] = true
	d, ok := p.byDigest[h]
	return d, ok, nil
}

func (p *processor) walk(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["..."]; ok {
			return nil, fmt.Errorf("%w: %q: a \"...\" claim outside an array", ErrMalformed, path)
		}
		if _, ok := x["_sd_alg"]; ok && path != "" {
			return nil, fmt.Errorf("%w: %q: _sd_alg below the top level", ErrMalformed, path)
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			if k == "_sd" {
				continue
			}
			w, err := p.walk(val, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		if sd, ok := x["_sd"]; ok {
			list, ok := sd.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %q: _sd is not an array", ErrMalformed, path)
			}
			for _, it := range list {
				h, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("%w: %q: _sd holds a non-string", ErrMalformed, path)
				}
				d, found, err := p.claim(h, path)
				if err != nil {
					return nil, err
				}
				if !found {
					continue // a decoy, or a claim not disclosed
				}
				arr, err := decodeDisclosure(d, 3)
				if err != nil {
					return nil, err
				}
				name, ok := arr[1].(string)
				if !ok {
					return nil, fmt.Errorf("%w: claim name is not a string", ErrDisclosure)
				}
				if name == "_sd" || name == "..." {
					return nil, fmt.Errorf("%w: claim name %q is reserved", ErrDisclosure, name)
				}
				if _, exists := out[name]; exists {
					return nil, fmt.Errorf("%w: claim %q already exists at %q", ErrDisclosure, name, path)
				}
				w, err := p.walk(arr[2], join(path, name))
				if err != nil {
					return nil, err
				}
				out[name] = w
				p.used = append(p.used, disclosed{raw: d, name: name, value: arr[2], path: join(path, name)})
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, el := range x {
			// An element is named by its place among the elements kept, which
			// for the holder (who has every disclosure) is its index as issued,
			// decoys aside.
			elPath := join(path, strconv.Itoa(len(out)))
			if m, ok := el.(map[string]any); ok {
				if h, isRef := m["..."]; isRef {
					hs, ok := h.(string)
					if len(m) != 1 || !ok {
						return nil, fmt.Errorf("%w: %q: an array digest object must hold only a string \"...\"", ErrMalformed, elPath)
					}
					d, found, err := p.claim(hs, elPath)
					if err != nil {
						return nil, err
					}
					if !found {
						continue // removed: not disclosed
					}
					arr, err := decodeDisclosure(d, 2)
					if err != nil {
						return nil, err
					}
					w, err := p.walk(arr[1], elPath)
					if err != nil {
						return nil, err
					}
					out = append(out, w)
					p.used = append(p.used, disclosed{raw: d, value: arr[1], path: elPath})
					continue
				}
			}
			w, err := p.walk(el, elPath)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
		return out, nil
	}
	return v, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// decodeDisclosure decodes a disclosure that must be an array of n
// elements whose first is a string salt.
func decodeDisclosure(d string, n int) ([]any, error) {
	raw, err := b64.Strict().DecodeString(d)
	if err != nil || b64.EncodeToString(raw) != d {
		return nil, fmt.Errorf("%w: not base64url", ErrDisclosure)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var arr []any
	if err := dec.Decode(&arr); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: not a JSON array", ErrDisclosure)
	}
	if len(arr) != n {
		kind := "a property [salt, name, value]"
		if n == 2 {
			kind = "an array element [salt, value]"
		}
		return nil, fmt.Errorf("%w: %d elements where %s is referenced", ErrDisclosure, len(arr), kind)
	}
	if _, ok := arr[0].(string); !ok {
		return nil, fmt.Errorf("%w: salt is not a string", ErrDisclosure)
	}
	return arr, nil
}

// KeyBinding is what a holder binds a presentation to (RFC 9901 §4.3).
type KeyBinding struct {
	Key      *jose.JSONWebKey // the holder's private key, matching cnf.jwk
	Audience string
	Nonce    string
	IssuedAt time.Time
}

// kbJWT signs a KB-JWT over presentation (the SD-JWT ending in '~').
func (kb *KeyBinding) sign(presentation string) (string, error) {
	alg, err := algOf(kb.Key.Key)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(presentation))
	payload, err := marshal(map[string]any{
		"iat":     kb.IssuedAt.Unix(),
		"aud":     kb.Audience,
		"nonce":   kb.Nonce,
		"sd_hash": b64.EncodeToString(h[:]),
	})
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: kb.Key.Key}, (&jose.SignerOptions{}).WithType(KBType))
	if err != nil {
		return "", fmt.Errorf("KB-JWT signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing KB-JWT: %w", err)
	}
	return jws.CompactSerialize()
}

// KeyBindingPolicy is what a verifier requires of a KB-JWT.
type KeyBindingPolicy struct {
	Audience string
	Nonce    string
	// MaxAge bounds how old the KB-JWT's iat may be; 0 means 5 minutes.
	MaxAge time.Duration
}

// verifyKB checks a KB-JWT against the holder key cnf.jwk and policy kp
// (RFC 9901 §7.3 step 5).
func verifyKB(kb string, t *sdJWT, claims map[string]any, kp *KeyBindingPolicy, now time.Time, leeway time.Duration) error {
	cnf, ok := claims["cnf"].(map[string]any)
	if !ok {
		return fmt.Errorf("%w: the token has no cnf claim to bind to", ErrKeyBinding)
	}
	jwkJSON, err := json.Marshal(cnf["jwk"])
	if err != nil || cnf["jwk"] == nil {
		return fmt.Errorf("%w: cnf has no jwk", ErrKeyBinding)
	}
	var holder jose.JSONWebKey
	if err := holder.UnmarshalJSON(jwkJSON); err != nil || !holder.IsPublic() {
		return fmt.Errorf("%w: cnf.jwk is not a public key", ErrKeyBinding)
	}
	jws, err := jose.ParseSignedCompact(kb, algorithms)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeyBinding, err)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != KBType {
		return fmt.Errorf("%w: typ %q, want %q", ErrKeyBinding, typ, KBType)
	}
	body, err := jws.Verify(holder.Key)
	if err != nil {
		return fmt.Errorf("%w: not signed by the cnf key: %v", ErrKeyBinding, err)
	}
	c, err := decodeJSON(body)
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrKeyBinding, err)
	}
	maxAge := kp.MaxAge
	if maxAge == 0 {
		maxAge = 5 * time.Minute
	}
	iat, err := numericDate(c, "iat")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeyBinding, err)
	}
	if iat.After(now.Add(leeway)) || now.Sub(iat) > maxAge+leeway {
		return fmt.Errorf("%w: iat %s is outside the accepted window (at most %s old)", ErrKeyBinding, iat.UTC().Format(time.RFC3339), maxAge)
	}
	if aud, _ := c["aud"].(string); aud != kp.Audience {
		return fmt.Errorf("%w: aud %q, want %q", ErrKeyBinding, c["aud"], kp.Audience)
	}
	if nonce, _ := c["nonce"].(string); nonce != kp.Nonce {
		return fmt.Errorf("%w: nonce %q, want %q", ErrKeyBinding, c["nonce"], kp.Nonce)
	}
	h := sha256.Sum256([]byte(t.presentation()))
	if sdh, _ := c["sd_hash"].(string); sdh != b64.EncodeToString(h[:]) {
		return fmt.Errorf("%w: sd_hash does not match the presented SD-JWT", ErrKeyBinding)
	}
	return nil
}

// numericDate reads a JWT NumericDate claim (whole seconds).
func numericDate(c map[string]any, name string) (time.Time, error) {
	n, ok := c[name].(json.Number)
	if !ok {
		return time.Time{}, fmt.Errorf("%s is missing or not a number", name)
	}
	i, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			return time.Time{}, fmt.Errorf("%s is not a number", name)
		}
		i = int64(f)
	}
	return time.Unix(i, 0), nil
}

// algOf returns the JWS algorithm of a private or public key.
func algOf(key any) (jose.SignatureAlgorithm, error) {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("key %T: use a P-256 or Ed25519 key", key)
}
