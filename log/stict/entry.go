package stict

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/crypto/cryptobyte"
)

// OIDPrecertSigning is the extended key usage of an RFC 6962 §3.1
// Precertificate Signing Certificate.
var OIDPrecertSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}

// NewEntry returns the log entry of a validated submission, stamped with
// timestamp (milliseconds). Its chain is the verified path without the
// leaf, root included, as fingerprints; the certificates themselves are
// served under issuer/.
//
// A precertificate's entry holds its TBSCertificate without the poison
// extension and the key hash of the CA that will issue the final
// certificate: its signer's, or, when a Precertificate Signing Certificate
// signed it, that certificate's issuer's (RFC 6962 §3.2).
func NewEntry(v *Validated, timestamp uint64) (*ctonly.Entry, error) {
	e := &ctonly.Entry{Timestamp: timestamp, IsPrecert: v.Precert, Certificate: v.Leaf.Raw}
	for _, c := range v.Chain[1:] {
		e.FingerprintsChain = append(e.FingerprintsChain, sha256.Sum256(c.Raw))
	}
	if !v.Precert {
		return e, nil
	}
	issuer := v.Chain[1]
	var preIssuer *ctx509.Certificate
	if slices.ContainsFunc(issuer.UnknownExtKeyUsage, OIDPrecertSigning.Equal) {
		if len(v.Chain) < 3 {
			return nil, fmt.Errorf("%w: a precertificate signing certificate needs its issuing CA in the chain", ErrPrecert)
		}
		var err error
		if preIssuer, err = ctx509.ParseCertificate(issuer.Raw); err != nil {
			return nil, fmt.Errorf("%w: precertificate signing certificate: %v", ErrMalformedChain, err)
		}
		issuer = v.Chain[2]
	}
	tbs, err := ctx509.BuildPrecertTBS(v.Leaf.RawTBSCertificate, preIssuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPrecert, err)
	}
	h := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	e.Certificate, e.Precertificate, e.IssuerKeyHash = tbs, v.Leaf.Raw, h[:]
	return e, nil
}

// TileLeaf is one entry of a static-ct-api data tile.
type TileLeaf struct {
	Timestamp uint64
	Precert   bool
	// Certificate is the certificate, or a precertificate's TBSCertificate.
	Certificate    []byte
	IssuerKeyHash  [32]byte // precertificates only
	Precertificate []byte   // precertificates only
	LeafIndex      uint64
	Chain          [][32]byte // fingerprints of the chain, leaf excluded

	timestampedEntry []byte
}

// ParseTileLeaf reads the first TileLeaf of a data tile and returns it with
// the rest of the tile. It requires exactly one extension, leaf_index, as
// static-ct-api logs write it.
func ParseTileLeaf(tile []byte) (*TileLeaf, []byte, error) {
	s := cryptobyte.String(tile)
	var l TileLeaf
	start := s
	var typ uint16
	var exts cryptobyte.String
	if !s.ReadUint64(&l.Timestamp) || !s.ReadUint16(&typ) {
		return nil, nil, errors.New("tile leaf: truncated")
	}
	switch typ {
	case 0:
		if !readCert(&s, &l.Certificate) {
			return nil, nil, errors.New("tile leaf: truncated certificate")
		}
	case 1:
		l.Precert = true
		var ikh []byte
		if !s.ReadBytes(&ikh, 32) || !readCert(&s, &l.Certificate) {
			return nil, nil, errors.New("tile leaf: truncated precertificate entry")
		}
		copy(l.IssuerKeyHash[:], ikh)
	default:
		return nil, nil, fmt.Errorf("tile leaf: unknown entry type %d", typ)
	}
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, nil, errors.New("tile leaf: truncated extensions")
	}
	l.timestampedEntry = start[:len(start)-len(s)]
	idx, err := parseLeafIndex(exts)
	if err != nil {
		return nil, nil, err
	}
	l.LeafIndex = idx
	if l.Precert && !readCert(&s, &l.Precertificate) {
		return nil, nil, errors.New("tile leaf: truncated precertificate")
	}
	var chain cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&chain) || len(chain)%32 != 0 {
		return nil, nil, errors.New("tile leaf: malformed chain fingerprints")
	}
	for !chain.Empty() {
		var f [32]byte
		chain.CopyBytes(f[:])
		l.Chain = append(l.Chain, f)
	}
	return &l, s, nil
}

// readCert reads an ASN.1Cert<1..2^24-1>.
func readCert(s *cryptobyte.String, out *[]byte) bool {
	var c cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&c) || len(c) == 0 {
		return false
	}
	*out = c
	return true
}

// parseLeafIndex reads CTExtensions holding exactly one leaf_index.
func parseLeafIndex(exts cryptobyte.String) (uint64, error) {
	var typ uint8
	var data cryptobyte.String
	var b []byte
	if !exts.ReadUint8(&typ) || typ != 0 || !exts.ReadUint16LengthPrefixed(&data) ||
		!data.ReadBytes(&b, 5) || !data.Empty() || !exts.Empty() {
		return 0, errors.New("tile leaf: extensions must be exactly one leaf_index")
	}
	return uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4]), nil
}

// SplitTile splits a data tile into its leaves' bytes.
func SplitTile(tile []byte) ([][]byte, error) {
	var out [][]byte
	for len(tile) > 0 {
		_, rest, err := ParseTileLeaf(tile)
		if err != nil {
			return nil, fmt.Errorf("leaf %d: %w", len(out), err)
		}
		out = append(out, tile[:len(tile)-len(rest)])
		tile = rest
	}
	return out, nil
}

// MerkleTreeLeaf returns the RFC 6962 MerkleTreeLeaf the log hashes: the
// leaf's TimestampedEntry under version v1 and type timestamped_entry.
func (l *TileLeaf) MerkleTreeLeaf() []byte {
	return append([]byte{0, 0}, l.timestampedEntry...)
}

// LeafHash returns the leaf's Merkle tree hash (RFC 6962 §2.1).
func (l *TileLeaf) LeafHash() []byte {
	h := sha256.Sum256(append([]byte{0}, l.MerkleTreeLeaf()...))
	return h[:]
}

// Entry returns the ctonly form of the leaf, to sign its SCT again.
func (l *TileLeaf) Entry() *ctonly.Entry {
	e := &ctonly.Entry{Timestamp: l.Timestamp, IsPrecert: l.Precert, Certificate: l.Certificate, FingerprintsChain: l.Chain}
	if l.Precert {
		e.Precertificate, e.IssuerKeyHash = l.Precertificate, l.IssuerKeyHash[:]
	}
	return e
}

// ExtraData returns get-entries' extra_data for the leaf, given its chain:
// a certificate_chain, or a PrecertChainEntry (RFC 6962 §4.6).
func (l *TileLeaf) ExtraData(chain [][]byte) ([]byte, error) {
	certs := make([]ct.ASN1Cert, len(chain))
	for i, c := range chain {
		certs[i] = ct.ASN1Cert{Data: c}
	}
	if l.Precert {
		return cttls.Marshal(ct.PrecertChainEntry{PreCertificate: ct.ASN1Cert{Data: l.Precertificate}, CertificateChain: certs})
	}
	return cttls.Marshal(ct.CertificateChain{Entries: certs})
}

// LeafCertificate returns the DER certificate whose chain an auditor
// checks: the certificate, or the precertificate.
func (l *TileLeaf) LeafCertificate() []byte {
	if l.Precert {
		return l.Precertificate
	}
	return l.Certificate
}

// Parse returns the leaf's certificate (or precertificate) and its
// TNAuthList, as a monitor reads them.
func (l *TileLeaf) Parse() (*x509.Certificate, TNAuthList, error) {
	c, err := x509.ParseCertificate(l.LeafCertificate())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformedChain, err)
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(OIDTNAuthList) {
			tns, err := ParseTNAuthList(e.Value)
			return c, tns, err
		}
	}
	return c, nil, fmt.Errorf("%w: the certificate has no TNAuthList extension", ErrTNAuthList)
}
