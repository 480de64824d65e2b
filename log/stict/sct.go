package stict

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDSCTList is RFC 6962's embedded SCT list extension (§3.3).
var OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// ErrSCT is a trusted log's SCT that does not verify, a malformed SCT
// list, or too few trusted logs' SCTs.
var ErrSCT = errors.New("SCT does not verify")

// Bounds of an embedded SCT list.
const (
	// MaxSCTs is the most SCTs a list may hold; real certificates carry
	// two or three.
	MaxSCTs = 32
	// sctClockSkew is how far in the future an SCT's timestamp may be.
	sctClockSkew = 60 * time.Second
	// DefaultMMD is the maximum merge delay of a vesperlog STI-CT log: it
	// issues SCTs only for entries a published checkpoint covers.
	DefaultMMD = 60 * time.Second
)

// CTLog is an STI-CT log a verifier trusts for SCTs: its checkpoint
// origin, RFC 6962 log ID and key, and its static-ct-api URL prefix.
type CTLog struct {
	Origin string
	LogID  [32]byte
	Key    *ecdsa.PublicKey
	URL    string
	MMD    time.Duration
}

// CTLogFromVKey returns the CTLog of an STI-CT log's note vkey, which is
// of type 0x05 (RFC6962NoteSignature: 0x05 ‖ DER SubjectPublicKeyInfo), so
// that the log ID and the SCT key follow from the vkey a verifier pins.
func CTLogFromVKey(origin, vkey, url string) (CTLog, error) {
	if _, err := NewVerifier(vkey); err != nil {
		return CTLog{}, fmt.Errorf("log %q: %w", origin, err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || parts[0] != origin {
		return CTLog{}, fmt.Errorf("log %q: vkey %q is not the log's", origin, vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 2 || raw[0] != 0x05 {
		return CTLog{}, fmt.Errorf("log %q: vkey is not an RFC 6962 (type 0x05) key", origin)
	}
	spki := raw[1:]
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return CTLog{}, fmt.Errorf("log %q: vkey: %w", origin, err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return CTLog{}, fmt.Errorf("log %q: vkey is not an ECDSA P-256 key", origin)
	}
	return CTLog{Origin: origin, LogID: sha256.Sum256(spki), Key: k, URL: url, MMD: DefaultMMD}, nil
}

// SCT is one SignedCertificateTimestamp of a certificate (RFC 6962
// §3.2), version v1 with an ECDSA-SHA256 signature.
type SCT struct {
	LogID      [32]byte
	Timestamp  uint64 // milliseconds
	Extensions []byte
	// LeafIndex is static-ct-api's leaf_index extension, if HasLeafIndex.
	LeafIndex    uint64
	HasLeafIndex bool
	Signature    []byte // DER ECDSA
}

// Time returns the SCT's timestamp.
func (s SCT) Time() time.Time { return time.UnixMilli(int64(s.Timestamp)).UTC() }

// ParseSCTList parses the extnValue of an embedded SCT list extension: an
// OCTET STRING holding the TLS SignedCertificateTimestampList (RFC 6962
// §3.3). It accepts DER only, no trailing bytes, 1 to MaxSCTs SCTs, each
// v1 with an ECDSA-SHA256 signature and at most one well-formed
// leaf_index extension.
func ParseSCTList(extnValue []byte) ([]SCT, error) {
	in := cryptobyte.String(extnValue)
	var list, scts cryptobyte.String
	if !in.ReadASN1(&list, cbasn1.OCTET_STRING) || !in.Empty() {
		return nil, fmt.Errorf("%w: SCT list extension is not an OCTET STRING", ErrSCT)
	}
	if !list.ReadUint16LengthPrefixed(&scts) || !list.Empty() || scts.Empty() {
		return nil, fmt.Errorf("%w: malformed SignedCertificateTimestampList", ErrSCT)
	}
	var out []SCT
	for !scts.Empty() {
		if len(out) == MaxSCTs {
			return nil, fmt.Errorf("%w: more than %d SCTs", ErrSCT, MaxSCTs)
		}
		var one cryptobyte.String
		if !scts.ReadUint16LengthPrefixed(&one) {
			return nil, fmt.Errorf("%w: SCT %d: truncated", ErrSCT, len(out))
		}
		s, err := parseSCT(one)
		if err != nil {
			return nil, fmt.Errorf("%w: SCT %d: %v", ErrSCT, len(out), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseSCT(b cryptobyte.String) (SCT, error) {
	var s SCT
	var version, hash, sig uint8
	var ext, signature cryptobyte.String
	if !b.ReadUint8(&version) {
		return s, errors.New("empty")
	}
	if version != 0 {
		return s, fmt.Errorf("version %d, want v1 (0)", version)
	}
	if !b.CopyBytes(s.LogID[:]) || !b.ReadUint64(&s.Timestamp) || !b.ReadUint16LengthPrefixed(&ext) ||
		!b.ReadUint8(&hash) || !b.ReadUint8(&sig) || !b.ReadUint16LengthPrefixed(&signature) || !b.Empty() {
		return s, errors.New("malformed")
	}
	if hash != 4 || sig != 3 {
		return s, fmt.Errorf("signature algorithm (hash %d, signature %d), want ECDSA with SHA-256 (4, 3)", hash, sig)
	}
	if len(signature) == 0 {
		return s, errors.New("empty signature")
	}
	s.Extensions, s.Signature = []byte(ext), []byte(signature)
	idx, has, err := sctLeafIndex(ext)
	if err != nil {
		return s, err
	}
	s.LeafIndex, s.HasLeafIndex = idx, has
	return s, nil
}

// sctLeafIndex reads CtExtensions (static-ct-api): other extension types
// are allowed, leaf_index at most once and exactly 5 bytes.
func sctLeafIndex(ext cryptobyte.String) (uint64, bool, error) {
	var idx uint64
	var has bool
	for !ext.Empty() {
		var typ uint8
		var data cryptobyte.String
		if !ext.ReadUint8(&typ) || !ext.ReadUint16LengthPrefixed(&data) {
			return 0, false, errors.New("malformed extensions")
		}
		if typ != 0 {
			continue
		}
		if has || len(data) != 5 {
			return 0, false, errors.New("malformed leaf_index extension")
		}
		has = true
		for _, c := range data {
			idx = idx<<8 | uint64(c)
		}
	}
	return idx, has, nil
}

// EmbeddedSCTs returns c's embedded SCTs; nil, nil if it has none.
func EmbeddedSCTs(c *x509.Certificate) ([]SCT, error) {
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDSCTList) {
			return ParseSCTList(e.Value)
		}
	}
	return nil, nil
}

// PrecertLeaf returns what s signs for cert, whose issuer (the CA that
// signed cert) is issuer: the RFC 6962 §3.2 input of a precert_entry,
// with cert's TBSCertificate less the SCT list extension (the
// precertificate's, less its poison) and SHA-256 of the issuer's
// SubjectPublicKeyInfo. The bytes are also the entry's MerkleTreeLeaf
// (v1 and timestamped_entry are 0), whose hash is SHA-256(0x00 ‖ leaf).
func PrecertLeaf(cert, issuer *x509.Certificate, s SCT) ([]byte, error) {
	tbs, err := ctx509.RemoveSCTList(cert.RawTBSCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSCT, err)
	}
	ikh := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	var b cryptobyte.Builder
	b.AddUint8(0) // sct_version v1
	b.AddUint8(0) // signature_type certificate_timestamp
	b.AddUint64(s.Timestamp)
	b.AddUint16(1) // precert_entry
	b.AddBytes(ikh[:])
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(tbs) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Extensions) })
	return b.Bytes()
}

// VerifiedSCT is an SCT of a trusted log that verified, with the
// MerkleTreeLeaf it signed.
type VerifiedSCT struct {
	SCT
	Log  CTLog
	Leaf []byte
}

// VerifyEmbeddedSCTs returns the SCTs of trusted logs that verify, and one
// line per SCT that was ignored (untrusted log); it errs (ErrSCT) on a
// trusted log's bad SCT, on a future timestamp, or when fewer than
// required distinct trusted logs remain (required 0 means 1).
//
// issuer is the CA that signed cert (the verified chain's second
// certificate). A trusted log's SCT that does not verify is a hard
// failure, not a skipped SCT: it means tampering or a broken CA.
func VerifyEmbeddedSCTs(cert, issuer *x509.Certificate, logs []CTLog, required int, now time.Time) ([]VerifiedSCT, []string, error) {
	if required <= 0 {
		required = 1
	}
	scts, err := EmbeddedSCTs(cert)
	if err != nil {
		return nil, nil, err
	}
	var out []VerifiedSCT
	var ignored []string
	seen := make(map[[32]byte]bool)
	for i, s := range scts {
		var log *CTLog
		for j := range logs {
			if logs[j].LogID == s.LogID {
				log = &logs[j]
				break
			}
		}
		if log == nil {
			ignored = append(ignored, fmt.Sprintf("SCT %d: log %s is not trusted; ignored", i, hex.EncodeToString(s.LogID[:])))
			continue
		}
		if s.Time().After(now.Add(sctClockSkew)) {
			return nil, ignored, fmt.Errorf("%w: SCT %d of %s has a timestamp in the future (%s)", ErrSCT, i, log.Origin, s.Time().Format(time.RFC3339))
		}
		leaf, err := PrecertLeaf(cert, issuer, s)
		if err != nil {
			return nil, ignored, err
		}
		h := sha256.Sum256(leaf)
		if !ecdsa.VerifyASN1(log.Key, h[:], s.Signature) {
			return nil, ignored, fmt.Errorf("%w: SCT %d of %s: bad signature", ErrSCT, i, log.Origin)
		}
		seen[s.LogID] = true
		out = append(out, VerifiedSCT{SCT: s, Log: *log, Leaf: leaf})
	}
	if len(seen) < required {
		what := "no embedded SCTs"
		if len(scts) > 0 {
			what = fmt.Sprintf("SCTs of %d trusted logs", len(seen))
		}
		return nil, ignored, fmt.Errorf("%w: the certificate has %s; %d required", ErrSCT, what, required)
	}
	return out, ignored, nil
}
