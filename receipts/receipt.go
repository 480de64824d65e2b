package receipts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// Type is the typ header of a receipt JWS.
const Type = "tlog-receipt+jwt"

// MaxReceiptSize bounds the compact serialization Verify accepts. A receipt
// holds one entry (at most 64 KiB, as tlog-tiles allows), its proof and a
// checkpoint with cosignatures, base64url-encoded twice over.
const MaxReceiptSize = 256 << 10

// Errors of Verify, one per check, each wrapped with detail.
var (
	ErrMalformed  = errors.New("malformed receipt")
	ErrUnknownKey = errors.New("receipt key is not trusted")
	ErrSignature  = errors.New("receipt signature does not verify")
	ErrCheckpoint = errors.New("checkpoint does not verify")
	ErrInclusion  = errors.New("inclusion proof does not verify")
)

// Receipt is what a receipt JWS says: the entry at Index of the log Origin,
// and a tlog-proof that a checkpoint of that log includes it.
type Receipt struct {
	Origin   string
	Index    uint64
	Entry    []byte
	Proof    *Proof
	IssuedAt time.Time
}

// payload is the JSON form of a receipt's JWS payload.
type payload struct {
	IssuedAt  int64  `json:"iat"`
	Origin    string `json:"origin"`
	Index     uint64 `json:"index"`
	Entry     string `json:"entry"`      // base64url, no padding
	TlogProof string `json:"tlog_proof"` // C2SP tlog-proof@v1 text
}

// Signer signs receipts with one key.
type Signer struct {
	key    crypto.Signer
	kid    string
	header []byte                                // the protected header, base64url: the same for every receipt
	check  func(kid string, iat time.Time) error // nil: none; set once by NewSigner
}

// SignerOption configures a Signer.
type SignerOption func(*Signer)

// WithKeyCheck has Sign call check with the signer's kid and the receipt's
// iat before each signature, and refuse to sign when it fails. A server
// passes its key history's check, so that it never signs with a key the
// history has retired. check is called concurrently.
func WithKeyCheck(check func(kid string, iat time.Time) error) SignerOption {
	return func(s *Signer) { s.check = check }
}

// NewSigner returns a Signer for an ES256 (P-256) private key. The kid
// header is the key's RFC 7638 SHA-256 thumbprint, as in the log's JWKS.
func NewSigner(key crypto.Signer, opts ...SignerOption) (*Signer, error) {
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("receipt key must be ECDSA P-256 (ES256), got %T", key.Public())
	}
	kid, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	// The header go-jose wrote before: members in sorted order. Built once,
	// as a log signs a receipt per entry (see Sign).
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(jose.ES256), kid, Type})
	if err != nil {
		return nil, fmt.Errorf("receipt header: %w", err)
	}
	s := &Signer{key: key, kid: kid, header: base64.RawURLEncoding.AppendEncode(nil, hdr)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// KeyID returns the kid of a receipt key: its RFC 7638 SHA-256 thumbprint, base64url.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("receipt key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyID returns the kid s signs with.
func (s *Signer) KeyID() string { return s.kid }

// PublicJWK returns the public key of s as it belongs in a JWKS.
func (s *Signer) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.key.Public(), KeyID: s.kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// Sign returns the compact JWS of r. r.Proof.Index must be r.Index.
func (s *Signer) Sign(r *Receipt) (string, error) {
	if r.Proof == nil || r.Proof.Index != r.Index {
		return "", fmt.Errorf("%w: the proof is not for index %d", ErrMalformed, r.Index)
	}
	if s.check != nil {
		if err := s.check(s.kid, r.IssuedAt); err != nil {
			return "", fmt.Errorf("not signing a receipt with key %s: %w", s.kid, err)
		}
	}
	p, err := json.Marshal(payload{
		IssuedAt:  r.IssuedAt.Unix(),
		Origin:    r.Origin,
		Index:     r.Index,
		Entry:     base64.RawURLEncoding.EncodeToString(r.Entry),
		TlogProof: string(r.Proof.Marshal()),
	})
	if err != nil {
		return "", fmt.Errorf("encoding receipt: %w", err)
	}
	return s.sign(p)
}

// sign returns the compact ES256 JWS of payload under the signer's header
// (RFC 7515 §5.1). It is the JWS signature by hand rather than go-jose's
// Signer, which encodes and parses its header maps again for each
// signature: two-thirds of a receipt's CPU beside the ECDSA signature
// itself in BenchmarkReceiptSign. Receipts are read back with go-jose
// (Verify), and every receipt test checks what this writes.
func (s *Signer) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(s.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	out = append(out, s.header...)
	out = append(out, '.')
	out = enc.AppendEncode(out, payload)
	h := sha256.Sum256(out)
	der, err := s.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing receipt: %w", err)
	}
	// crypto.Signer gives ECDSA's ASN.1 form; ES256 is R‖S, each a 32-byte
	// big-endian integer (RFC 7518 §3.4).
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return "", fmt.Errorf("signing receipt: the key returned a malformed ECDSA signature")
	}
	var sig [64]byte
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	out = append(out, '.')
	return string(enc.AppendEncode(out, sig[:])), nil
}

// Trust is what a verifier pins: the receipt keys (a JWKS, retired keys
// included) and a C2SP tlog-policy naming the logs and their witnesses.
// A log whose witnesses differ has its own policy in Policies, by origin.
type Trust struct {
	Keys     *KeySet
	Policy   *policy.Policy
	Policies map[string]*policy.Policy
}

// PolicyFor is the policy a checkpoint of origin must meet: its own if it
// has one, else Policy.
func (t Trust) PolicyFor(origin string) *policy.Policy {
	if p, ok := t.Policies[origin]; ok {
		return p
	}
	return t.Policy
}

// Verified is a receipt that passed every check of Verify.
type Verified struct {
	Receipt
	KeyID      string
	Checkpoint *policy.Checkpoint
	// Checks says, one line per check, what was verified.
	Checks []string
}

// Verify checks a receipt offline and returns what it proves. The checks, in
// order, each failing with its own error:
//
//  1. the JWS: typ tlog-receipt+jwt, ES256 or EdDSA, signed by a key in
//     trust.Keys named by kid (ErrMalformed, ErrUnknownKey, ErrSignature);
//  2. the key's validity window: the payload's iat is at or after the key's
//     nbf, and, for a retired key, at or before its exp (ErrKeyWindow);
//  3. the checkpoint in the tlog-proof: signed by the log named in the
//     payload, with cosignatures meeting the quorum of that log's policy,
//     trust.PolicyFor(origin) (ErrCheckpoint);
//  4. the inclusion proof of the RFC 6962 leaf hash of the entry at the index,
//     up to the checkpoint's root (ErrInclusion).
//
// It does not interpret the entry: decode it with the log's own format (for
// the vetting log, vetting.ParseLeaf). The expected call pattern is
//
//	v, err := receipts.Verify(jws, trust)
//	leaf, err := vetting.ParseLeaf(v.Entry)
func Verify(receipt string, trust Trust) (*Verified, error) {
	if trust.Keys == nil || trust.Policy == nil {
		return nil, errors.New("receipts.Verify: trust needs receipt keys and a policy")
	}
	if len(receipt) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(receipt), MaxReceiptSize)
	}
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(receipt), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, typ, Type)
	}
	if hdr.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid header", ErrMalformed)
	}
	if hdr.JSONWebKey != nil {
		// A key carried in the receipt proves nothing; only pinned keys count.
		return nil, fmt.Errorf("%w: embedded jwk header is not accepted", ErrMalformed)
	}
	keys := trust.Keys.Key(hdr.KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: kid %s", ErrUnknownKey, hdr.KeyID)
	}
	var body []byte
	var key *Key
	for i := range keys {
		if !keys[i].IsPublic() {
			continue
		}
		if body, err = jws.Verify(keys[i].Key); err == nil {
			key = &keys[i]
			break
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: kid %s: %v", ErrSignature, hdr.KeyID, err)
	}
	v := &Verified{KeyID: hdr.KeyID}
	v.Checks = append(v.Checks, fmt.Sprintf("receipt signature: %s by trusted key %s", hdr.Algorithm, hdr.KeyID))

	var p payload
	if err := strictUnmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	iat := time.Unix(p.IssuedAt, 0)
	if !key.Covers(iat) {
		return nil, fmt.Errorf("%w: kid %s, iat %d (%s), window %s", ErrKeyWindow, hdr.KeyID, p.IssuedAt, iat.UTC().Format(time.RFC3339), key.Window())
	}
	v.Checks = append(v.Checks, keyWindowCheck(key, p.IssuedAt))
	if p.Origin == "" {
		return nil, fmt.Errorf("%w: payload has no origin", ErrMalformed)
	}
	entry, err := decodeCanonical(base64.RawURLEncoding, p.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: entry is not base64url: %v", ErrMalformed, err)
	}
	pr, err := ParseProof([]byte(p.TlogProof))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if pr.Index != p.Index {
		return nil, fmt.Errorf("%w: payload index %d, proof index %d", ErrMalformed, p.Index, pr.Index)
	}
	v.Receipt = Receipt{Origin: p.Origin, Index: p.Index, Entry: entry, Proof: pr, IssuedAt: iat}

	pol := trust.PolicyFor(p.Origin)
	cp, err := pol.Verify(pr.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if cp.Origin != p.Origin {
		return nil, fmt.Errorf("%w: checkpoint is for log %q, receipt for %q", ErrCheckpoint, cp.Origin, p.Origin)
	}
	v.Checkpoint = cp
	v.Checks = append(v.Checks, fmt.Sprintf("checkpoint: signed by log %s, size %d", cp.Origin, cp.Size))
	if q := pol.Quorum(); q == "none" {
		v.Checks = append(v.Checks, "witness policy: quorum none (no cosignatures required)")
	} else {
		v.Checks = append(v.Checks, fmt.Sprintf("witness policy: quorum %q met by %s", q, strings.Join(cp.Cosigners, ", ")))
	}

	leafHash := rfc6962.DefaultHasher.HashLeaf(entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, leafHash, pr.Hashes, cp.Hash[:]); err != nil {
		return nil, fmt.Errorf("%w: entry %d in tree of size %d: %v", ErrInclusion, p.Index, cp.Size, err)
	}
	v.Checks = append(v.Checks, fmt.Sprintf("inclusion: entry %d (leaf hash %s) is in the tree of size %d with root %s",
		p.Index, base64.StdEncoding.EncodeToString(leafHash), cp.Size, base64.StdEncoding.EncodeToString(cp.Hash[:])))
	return v, nil
}

// keyWindowCheck is Verify's line saying which window iat was checked against.
func keyWindowCheck(k *Key, iat int64) string {
	at := time.Unix(iat, 0).UTC().Format(time.RFC3339)
	switch {
	case k.NotBefore.IsZero() && !k.Retired():
		return fmt.Sprintf("receipt key window: issued %s; the key has no window (from a history before windows: any iat)", at)
	case k.Retired():
		return fmt.Sprintf("receipt key window: issued %s, within the retired key's window %s", at, k.Window())
	}
	return fmt.Sprintf("receipt key window: issued %s, within the current key's window %s", at, k.Window())
}

// Entry returns the entry a receipt is about, without verifying anything:
// for an issuer checking what it is about to embed, never for trust.
func Entry(receipt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(receipt), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var p payload
	if err := strictUnmarshal(jws.UnsafePayloadWithoutVerification(), &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	entry, err := decodeCanonical(base64.RawURLEncoding, p.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: entry is not base64url: %v", ErrMalformed, err)
	}
	return entry, nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after JSON object")
	}
	return nil
}
