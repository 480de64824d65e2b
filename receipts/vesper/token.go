package vesper

import (
	"crypto"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
)

// Type is the typ header of a vesper token's issuer-signed JWT (RFC 9901
// §9.11 asks for explicit typing; this profile is vesper's own).
const Type = "vesper+sd-jwt"

// ErrRevoked is the issuing agent's revocation (vetting.ErrRevoked): the
// token's entry was logged, or the token issued, at or after it.
var ErrRevoked = vetting.ErrRevoked

// DefaultLeeway is the clock skew Verify tolerates on exp, nbf and iat.
const DefaultLeeway = time.Minute

// claims every vesper token carries in the clear
// (draft-wendt-stir-vesper §6.3), and which the issuer's persona claims
// may therefore not use.
var reserved = []string{"iss", "sub", "iat", "exp", "nbf", "kyc_data_hash", "transparency_receipt", "cnf", "_sd", "_sd_alg", "..."}

// Issuance is what a vetting agent puts in a token.
type Issuance struct {
	Key         *jose.JSONWebKey // the agent's private key, the one it logs statements with
	Issuer      string           // iss
	Subject     string           // sub: the vetted entity's id
	IssuedAt    time.Time
	Lifetime    time.Duration    // exp = iat + Lifetime
	KYCDataHash [32]byte         // the digest logged
	Receipt     string           // its transparency receipt
	HolderKey   *jose.JSONWebKey // optional public key for cnf (key binding)
	Claims      map[string]any   // persona claims
	Frame       *Frame           // which persona claims are selectively disclosable
}

// Issue returns a vesper token: an SD-JWT whose issuer-signed JWT carries
// the required claims in the clear and the persona claims as the frame
// says, followed by every disclosure. The expected call pattern is
//
//	token, err := vesper.Issue(vesper.Issuance{Key: agentKey, ..., Receipt: receipt})
func Issue(is Issuance) (string, error) {
	alg, err := algOf(is.Key.Key)
	if err != nil {
		return "", err
	}
	if is.Issuer == "" || is.Subject == "" || is.Receipt == "" || is.Lifetime <= 0 {
		return "", fmt.Errorf("%w: issuer, subject, receipt and a positive lifetime are required", ErrClaims)
	}
	for _, r := range reserved {
		if _, ok := is.Claims[r]; ok {
			return "", fmt.Errorf("%w: persona claim %q is reserved", ErrClaims, r)
		}
	}
	if err := checkReceiptEntry(is); err != nil {
		return "", err
	}
	persona := is.Claims
	if persona == nil {
		persona = map[string]any{}
	}
	concealed, disclosures, err := conceal(persona, is.Frame)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrClaims, err)
	}
	payload := concealed.(map[string]any)
	payload["iss"] = is.Issuer
	payload["sub"] = is.Subject
	payload["iat"] = is.IssuedAt.Unix()
	payload["exp"] = is.IssuedAt.Add(is.Lifetime).Unix()
	payload["kyc_data_hash"] = b64.EncodeToString(is.KYCDataHash[:])
	payload["transparency_receipt"] = is.Receipt
	payload["_sd_alg"] = HashAlg
	if is.HolderKey != nil {
		pub := is.HolderKey.Public()
		if !pub.Valid() {
			return "", fmt.Errorf("%w: holder key is not a valid key", ErrClaims)
		}
		if _, err := algOf(pub.Key); err != nil {
			return "", fmt.Errorf("%w: holder %v", ErrClaims, err)
		}
		payload["cnf"] = map[string]any{"jwk": pub}
	}
	body, err := marshal(payload)
	if err != nil {
		return "", fmt.Errorf("encoding token: %w", err)
	}
	kid, err := vetting.Thumbprint(&jose.JSONWebKey{Key: is.Key.Key.(crypto.Signer).Public()})
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: is.Key.Key},
		(&jose.SignerOptions{}).WithType(Type).WithHeader("kid", b64.EncodeToString(kid[:])))
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	jws, err := signer.Sign(body)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	jwt, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	return (&sdJWT{jwt: jwt, disclosures: disclosures}).presentation(), nil
}

// checkReceiptEntry refuses to issue a token that its verifier would
// refuse: the receipt's entry must be this digest, logged by this key, for
// this subject if it names one. (The receipt itself is the verifier's to
// verify; the agent checked it when the log answered.)
func checkReceiptEntry(is Issuance) error {
	entry, err := receipts.Entry(is.Receipt)
	if err != nil {
		return fmt.Errorf("%w: receipt: %v", ErrClaims, err)
	}
	leaf, err := vetting.ParseLeaf(entry)
	if err != nil {
		return fmt.Errorf("%w: the receipt is not for a vetting log entry: %v", ErrNotLogged, err)
	}
	kid, err := vetting.Thumbprint(&jose.JSONWebKey{Key: is.Key.Key.(crypto.Signer).Public()})
	if err != nil {
		return err
	}
	switch {
	case leaf.Digest != is.KYCDataHash:
		return fmt.Errorf("%w: the receipt is for digest %s", ErrNotLogged, b64.EncodeToString(leaf.Digest[:]))
	case leaf.AgentKey != kid:
		return fmt.Errorf("%w: the receipt's entry was logged by another agent key", ErrNotLogged)
	case leaf.Subject != "" && leaf.Subject != is.Subject:
		return fmt.Errorf("%w: the receipt's entry is about subject %q, not %q", ErrNotLogged, leaf.Subject, is.Subject)
	}
	return nil
}

// Present returns the presentation a holder sends a verifier: the token
// with only the disclosures of the claims at the given paths (dotted,
// array elements by their index as issued, e.g. "address" or "rcd.0"; "*"
// for all), their parents and their contents, and a KB-JWT if kb is set.
func Present(token string, paths []string, kb *KeyBinding) (string, error) {
	t, err := parseSDJWT(token)
	if err != nil {
		return "", err
	}
	if t.kb != "" {
		return "", fmt.Errorf("%w: a presentation cannot be presented again", ErrMalformed)
	}
	payload, err := jwtPayload(t.jwt)
	if err != nil {
		return "", err
	}
	_, used, err := process(payload, t.disclosures)
	if err != nil {
		return "", err
	}
	var keep []string
	matched := map[string]bool{}
	for _, d := range used {
		for _, p := range paths {
			if p == "*" || d.path == p || strings.HasPrefix(d.path, p+".") || strings.HasPrefix(p, d.path+".") {
				keep = append(keep, d.raw)
				matched[p] = true
				break
			}
		}
	}
	for _, p := range paths {
		if !matched[p] {
			return "", fmt.Errorf("%w: no disclosable claim at %q", ErrClaims, p)
		}
	}
	out := &sdJWT{jwt: t.jwt, disclosures: keep}
	pres := out.presentation()
	if kb == nil {
		return pres, nil
	}
	kbJWT, err := kb.sign(pres)
	if err != nil {
		return "", err
	}
	return pres + kbJWT, nil
}

// Disclosable lists the paths of the claims a token can disclose.
func Disclosable(token string) ([]string, error) {
	t, err := parseSDJWT(token)
	if err != nil {
		return nil, err
	}
	payload, err := jwtPayload(t.jwt)
	if err != nil {
		return nil, err
	}
	_, used, err := process(payload, t.disclosures)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(used))
	for i, d := range used {
		out[i] = d.path
	}
	sort.Strings(out)
	return out, nil
}

// jwtPayload decodes a JWT's payload without verifying it (the holder's
// view of its own token).
func jwtPayload(jwt string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(jwt, algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p, err := decodeJSON(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return p, nil
}

// Verification is what a verifier trusts and requires.
type Verification struct {
	// Trust verifies the embedded receipt.
	Trust receipts.Trust
	// Issuers are the vetting agents whose tokens are accepted, by key.
	Issuers *vetting.Agents
	// KeyBinding, if set, requires an SD-JWT+KB meeting it; if nil, the
	// token must be a plain SD-JWT (RFC 9901 §4: the decision is the
	// verifier's, never the holder's).
	KeyBinding *KeyBindingPolicy
	// Now is the verifier's clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed; 0 means DefaultLeeway.
	Leeway time.Duration
}

// Verified is a token that passed every check of Verify.
type Verified struct {
	Claims      map[string]any // the processed payload: clear and disclosed claims
	Disclosed   []string       // paths of the claims disclosed
	Issuer      *vetting.Agent
	Receipt     *receipts.Verified
	Leaf        *vetting.Leaf
	KeyBound    bool
	KYCDataHash string
	Checks      []string
}

// Verify checks a vesper token (SD-JWT or SD-JWT+KB) offline, in order:
// the issuer-signed JWT (typ, algorithm, a registered agent's key by kid,
// no embedded keys); the disclosures (RFC 9901 §7.1: each referenced once,
// no digest twice, no reserved or clashing names); _sd_alg; the required
// claims and their validity times; key binding, if required (§7.3); the
// transparency receipt (receipts.Verify); and that the receipt's entry is
// this token's kyc_data_hash, logged and signed by this token's issuer key,
// for this token's subject if the entry names one; and, if the issuer is
// revoked, that the entry was logged (by the leaf's log time) and the
// token issued before the revocation (ErrRevoked otherwise; a check line
// shows the revocation). The expected call pattern is
//
//	v, err := vesper.Verify(token, vesper.Verification{Trust: trust, Issuers: agents})
//	name := v.Claims["contact_given_name"]
func Verify(token string, o Verification) (*Verified, error) {
	if o.Issuers == nil || o.Trust.Keys == nil || o.Trust.Policy == nil {
		return nil, fmt.Errorf("vesper.Verify: Trust and Issuers are required")
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	leeway := o.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	t, err := parseSDJWT(strings.TrimSpace(token))
	if err != nil {
		return nil, err
	}
	switch {
	case o.KeyBinding != nil && t.kb == "":
		return nil, fmt.Errorf("%w: key binding is required and the token has no KB-JWT", ErrKeyBinding)
	case o.KeyBinding == nil && t.kb != "":
		return nil, fmt.Errorf("%w: a KB-JWT was sent where none is expected (give the audience and nonce to check it)", ErrMalformed)
	}

	jws, err := jose.ParseSignedCompact(t.jwt, algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, typ, Type)
	}
	if hdr.JSONWebKey != nil {
		return nil, fmt.Errorf("%w: a key embedded in the header is not accepted; issuer keys come from the registry", ErrMalformed)
	}
	var kid [32]byte
	if raw, err := b64.Strict().DecodeString(hdr.KeyID); err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%w: kid %q is not a key thumbprint", ErrIssuer, hdr.KeyID)
	} else {
		copy(kid[:], raw)
	}
	agent, err := o.Issuers.Lookup(kid)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIssuer, err)
	}
	body, err := jws.Verify(agent.Key.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: agent %q: %v", ErrSignature, agent.Name, err)
	}
	v := &Verified{Issuer: agent}
	v.Checks = append(v.Checks, fmt.Sprintf("issuer signature: %s by registered agent %q (key %s)", hdr.Algorithm, agent.Name, hdr.KeyID))

	payload, err := decodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	claims, used, err := process(payload, t.disclosures)
	if err != nil {
		return nil, err
	}
	for _, d := range used {
		v.Disclosed = append(v.Disclosed, d.path)
	}
	sort.Strings(v.Disclosed)
	v.Claims = claims
	v.Checks = append(v.Checks, fmt.Sprintf("disclosures: %d, each referenced once (%s)", len(used), strings.Join(v.Disclosed, ", ")))

	if err := checkClaims(claims, agent, now, leeway); err != nil {
		return nil, err
	}
	v.Checks = append(v.Checks, "claims: iss, sub, iat, exp, kyc_data_hash and transparency_receipt present; valid now")

	if o.KeyBinding != nil {
		if err := verifyKB(t.kb, t, claims, o.KeyBinding, now, leeway); err != nil {
			return nil, err
		}
		v.KeyBound = true
		v.Checks = append(v.Checks, fmt.Sprintf("key binding: KB-JWT by the cnf key, aud %q, nonce %q, fresh, sd_hash matches", o.KeyBinding.Audience, o.KeyBinding.Nonce))
	}

	rv, err := receipts.Verify(claims["transparency_receipt"].(string), o.Trust)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReceipt, err)
	}
	v.Receipt = rv
	v.Checks = append(v.Checks, rv.Checks...)
	leaf, err := vetting.ParseLeaf(rv.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: the entry is not a vetting log entry: %v", ErrNotLogged, err)
	}
	v.Leaf = leaf
	v.KYCDataHash = claims["kyc_data_hash"].(string)
	if got := b64.EncodeToString(leaf.Digest[:]); got != v.KYCDataHash {
		return nil, fmt.Errorf("%w: the log entry is for digest %s, the token's kyc_data_hash is %s", ErrNotLogged, got, v.KYCDataHash)
	}
	if leaf.AgentKey != agent.Thumbprint {
		return nil, fmt.Errorf("%w: the entry was logged by agent key %s, the token is signed by %s", ErrNotLogged, b64.EncodeToString(leaf.AgentKey[:]), hdr.KeyID)
	}
	if err := leaf.Verify(&agent.Key); err != nil {
		return nil, fmt.Errorf("%w: the entry's statement: %v", ErrNotLogged, err)
	}
	if leaf.Subject != "" && leaf.Subject != claims["sub"] {
		return nil, fmt.Errorf("%w: the entry is about subject %q, the token about %q", ErrNotLogged, leaf.Subject, claims["sub"])
	}
	v.Checks = append(v.Checks, fmt.Sprintf("logged: entry %d is kyc_data_hash %s, signed by the token's issuer", rv.Index, v.KYCDataHash))
	if agent.Revoked != nil {
		iat, _ := numericDate(claims, "iat") // checked by checkClaims
		check, err := RevocationCheck(agent, leaf, rv.Index)
		if err != nil {
			return nil, err
		}
		// The token is the agent's signature too: one it says it made
		// after its revocation is not accepted either. (A stolen key can
		// backdate iat; only the log's time is beyond its reach.)
		if !iat.Before(agent.Revoked.At) {
			return nil, fmt.Errorf("%w: agent %q was revoked at %s (%s); the token was issued at %s, after it",
				ErrRevoked, agent.Name, agent.Revoked.At.UTC().Format(time.RFC3339Nano), agent.Revoked.Reason, iat.UTC().Format(time.RFC3339))
		}
		v.Checks = append(v.Checks, check+fmt.Sprintf(", and the token issued at %s, before it", iat.UTC().Format(time.RFC3339)))
	}
	return v, nil
}

// RevocationCheck applies agent's revocation, if any, to its entry leaf
// (at index): an entry logged at or after the revocation time is refused
// with ErrRevoked; one logged before it is accepted, and the returned
// check line says so, with the revocation's time and reason. "Logged" is
// the leaf's timestamp (Leaf.LoggedAt), which the log writes and its
// checkpoint signs, not a time the agent chose. For an agent not revoked
// it returns "" and nil.
func RevocationCheck(agent *vetting.Agent, leaf *vetting.Leaf, index uint64) (string, error) {
	r := agent.Revoked
	if r == nil {
		return "", nil
	}
	logged := leaf.LoggedAt().UTC().Format(time.RFC3339Nano)
	if err := agent.ValidAt(leaf.LoggedAt()); err != nil {
		return "", fmt.Errorf("%w; entry %d was logged at %s, after it", err, index, logged)
	}
	return fmt.Sprintf("revocation: agent %q was revoked at %s (%s); entry %d was logged at %s, before it",
		agent.Name, r.At.UTC().Format(time.RFC3339Nano), r.Reason, index, logged), nil
}

// checkClaims checks the claims vesper requires and their validity times.
func checkClaims(c map[string]any, agent *vetting.Agent, now time.Time, leeway time.Duration) error {
	for _, name := range []string{"iss", "sub", "kyc_data_hash", "transparency_receipt"} {
		if s, ok := c[name].(string); !ok || s == "" {
			return fmt.Errorf("%w: %s is missing or not a string", ErrClaims, name)
		}
	}
	if agent.Issuer != "" && c["iss"] != agent.Issuer {
		return fmt.Errorf("%w: iss %q, agent %q issues as %q", ErrClaims, c["iss"], agent.Name, agent.Issuer)
	}
	if raw, err := b64.Strict().DecodeString(c["kyc_data_hash"].(string)); err != nil || len(raw) != 32 {
		return fmt.Errorf("%w: kyc_data_hash is not a base64url SHA-256 digest", ErrClaims)
	}
	iat, err := numericDate(c, "iat")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrClaims, err)
	}
	exp, err := numericDate(c, "exp")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrClaims, err)
	}
	if iat.After(now.Add(leeway)) {
		return fmt.Errorf("%w: issued in the future (iat %s)", ErrExpired, iat.UTC().Format(time.RFC3339))
	}
	if !now.Before(exp.Add(leeway)) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	if _, ok := c["nbf"]; ok {
		nbf, err := numericDate(c, "nbf")
		if err != nil {
			return fmt.Errorf("%w: %v", ErrClaims, err)
		}
		if now.Add(leeway).Before(nbf) {
			return fmt.Errorf("%w: not valid before %s", ErrExpired, nbf.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// ClaimsJSON renders claims for people and scripts.
func ClaimsJSON(c map[string]any) string {
	b, _ := json.MarshalIndent(c, "", "  ")
	return string(b)
}
