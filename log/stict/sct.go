package stict

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"time"
)

// OIDSCTList is RFC 6962's embedded SCT list extension (§3.3).
var OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// ErrSCT is a trusted log's SCT that does not verify, or too few of them.
var ErrSCT = errors.New("SCT does not verify")

// CTLog is an STI-CT log a verifier trusts for SCTs.
type CTLog struct {
	Origin string
	LogID  [32]byte
	Key    *ecdsa.PublicKey
	URL    string
	MMD    time.Duration
}

// CTLogFromVKey returns the CTLog of a type-0x05 (RFC 6962) note vkey.
func CTLogFromVKey(origin, vkey, url string) (CTLog, error) {
	return CTLog{}, errors.ErrUnsupported
}

// SCT is one SignedCertificateTimestamp of a certificate (RFC 6962 §3.2).
type SCT struct {
	LogID        [32]byte
	Timestamp    uint64
	Extensions   []byte
	LeafIndex    uint64
	HasLeafIndex bool
	Signature    []byte // DER ECDSA
}

// ParseSCTList parses the extnValue of an embedded SCT list extension.
func ParseSCTList(extnValue []byte) ([]SCT, error) { return nil, errors.ErrUnsupported }

// EmbeddedSCTs returns c's embedded SCTs; nil, nil if it has none.
func EmbeddedSCTs(c *x509.Certificate) ([]SCT, error) { return nil, errors.ErrUnsupported }

// PrecertLeaf returns what s signs for cert issued by issuer.
func PrecertLeaf(cert, issuer *x509.Certificate, s SCT) ([]byte, error) {
	return nil, errors.ErrUnsupported
}

// VerifiedSCT is an SCT of a trusted log that verified.
type VerifiedSCT struct {
	SCT
	Log  CTLog
	Leaf []byte
}

// VerifyEmbeddedSCTs returns the SCTs of trusted logs that verify, and one
// line per SCT that was ignored (untrusted log); it errs (ErrSCT) on a
// trusted log's bad SCT, on a future timestamp, or when fewer than
// required distinct trusted logs remain.
func VerifyEmbeddedSCTs(cert, issuer *x509.Certificate, logs []CTLog, required int, now time.Time) ([]VerifiedSCT, []string, error) {
	return nil, nil, errors.ErrUnsupported
}
