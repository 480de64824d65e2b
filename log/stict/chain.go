package stict

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// OIDPoison is RFC 6962's precertificate poison extension (§3.1).
var OIDPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

// MaxChain is the longest chain accepted, leaf and root included.
const MaxChain = 10

// Errors of ValidateChain, each wrapped with detail; every one is a 400
// for the submitter, and none touches the log.
var (
	ErrMalformedChain = errors.New("malformed certificate chain")
	ErrUntrusted      = errors.New("chain does not verify to an accepted STI root")
	ErrExpired        = errors.New("certificate is not valid at this time")
	ErrKeyUsage       = errors.New("certificate key usage does not allow signing")
	ErrPrecert        = errors.New("precertificate mismatch")
)

// Roots are the STI trust anchors a log accepts, with the intermediates
// verified to them. They are safe for concurrent use.
type Roots struct {
	pool     *x509.CertPool
	certs    []*x509.Certificate
	hashes   [][sha256.Size]byte // SHA-256 of each of certs' DER
	verified *issuerCache
}

// ParseRoots reads PEM-encoded root certificates.
func ParseRoots(pemBytes []byte) (*Roots, error) {
	r := &Roots{pool: x509.NewCertPool(), verified: newIssuerCache(maxVerifiedIssuers)}
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("root certificate: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("root %q is not a CA", c.Subject)
		}
		r.pool.AddCert(c)
		r.certs = append(r.certs, c)
		r.hashes = append(r.hashes, sha256.Sum256(c.Raw))
	}
	if len(r.certs) == 0 {
		return nil, errors.New("no root certificates")
	}
	return r, nil
}

// Certs returns the roots, for get-roots.
func (r *Roots) Certs() []*x509.Certificate { return slices.Clone(r.certs) }

// Validated is an accepted submission.
type Validated struct {
	Leaf       *x509.Certificate
	Chain      []*x509.Certificate // the verified path, leaf first, root last
	TNAuthList TNAuthList
	// Constraints are the leaf's JWT claim constraints (RFC 8226 §8 or
	// RFC 9118), nil if it has none.
	Constraints *Constraints
	Precert     bool
}

// ValidateChain checks a submitted chain (DER, leaf first, root optional)
// as add-chain (precert false) or add-pre-chain (precert true) require:
// it must verify to one of roots at now, its leaf must allow digital
// signatures and carry a well-formed TNAuthList, and a precertificate must
// carry the critical poison extension (and a certificate must not).
//
// A leaf's JWT claim constraints, if any, must be well-formed too (and not
// both kinds at once). A critical TNAuthList, poison or claim-constraints
// extension is accepted once it has been checked here, as crypto/x509
// would otherwise refuse it as unhandled.
func ValidateChain(der [][]byte, roots *Roots, now time.Time, precert bool) (*Validated, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrMalformedChain)
	}
	if len(der) > MaxChain {
		return nil, fmt.Errorf("%w: %d certificates, at most %d", ErrMalformedChain, len(der), MaxChain)
	}
	// The submitted issuer, if it is a verified intermediate, and any
	// root are not parsed again: their DER is the same.
	var cached *verifiedIssuer
	if len(der) > 1 {
		cached = roots.lookup(sha256.Sum256(der[1]))
	}
	certs := make([]*x509.Certificate, len(der))
	for i, d := range der {
		if i == 1 && cached != nil {
			certs[i] = cached.inter
			continue
		}
		if i > 0 {
			if r := roots.cert(d); r != nil {
				certs[i] = r
				continue
			}
		}
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformedChain, i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]

	var tnExt, poison []byte
	var handled []asn1.ObjectIdentifier
	for _, e := range leaf.Extensions {
		switch {
		case e.Id.Equal(OIDTNAuthList):
			tnExt, handled = e.Value, append(handled, e.Id)
		case e.Id.Equal(OIDJWTClaimConstraints), e.Id.Equal(OIDEnhancedJWTClaimConstraints):
			handled = append(handled, e.Id)
		case e.Id.Equal(OIDPoison):
			poison, handled = e.Value, append(handled, e.Id)
			if !e.Critical || string(e.Value) != "\x05\x00" {
				return nil, fmt.Errorf("%w: the poison extension must be critical with a NULL value (RFC 6962 §3.1)", ErrPrecert)
			}
		}
	}
	switch {
	case precert && poison == nil:
		return nil, fmt.Errorf("%w: add-pre-chain takes a precertificate (with the poison extension)", ErrPrecert)
	case !precert && poison != nil:
		return nil, fmt.Errorf("%w: add-chain takes a final certificate; submit precertificates to add-pre-chain", ErrPrecert)
	}
	if tnExt == nil {
		return nil, fmt.Errorf("%w: the certificate has no TNAuthList extension (RFC 8226)", ErrTNAuthList)
	}
	tns, err := ParseTNAuthList(tnExt)
	if err != nil {
		return nil, err
	}
	cons, err := CertificateConstraints(leaf)
	if err != nil {
		return nil, err
	}
	leaf.UnhandledCriticalExtensions = slices.DeleteFunc(leaf.UnhandledCriticalExtensions, func(id asn1.ObjectIdentifier) bool {
		return slices.ContainsFunc(handled, id.Equal)
	})
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: an STI certificate signs PASSporTs and needs digitalSignature", ErrKeyUsage)
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: valid from %s to %s", ErrExpired, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if cached != nil && policyFree(leaf) && !now.Before(cached.root.NotBefore) && !now.After(cached.root.NotAfter) {
		// The chain through a verified intermediate: the leaf's signature
		// by it, and every check of the leaf and the intermediate (their
		// validity at now among them), are made again; the intermediate's
		// signature by the root is not. A refusal here is decided, and
		// explained, by the full check below.
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: cached.anchor, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
			roots.verified.hits.Add(1)
			return &Validated{Leaf: leaf, Chain: []*x509.Certificate{leaf, cached.inter, cached.root}, TNAuthList: tns, Constraints: cons, Precert: precert}, nil
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	paths, err := leaf.Verify(x509.VerifyOptions{Roots: roots.pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	roots.remember(paths[0])
	return &Validated{Leaf: leaf, Chain: paths[0], TNAuthList: tns, Constraints: cons, Precert: precert}, nil
}

// cert returns the root whose DER is der, or nil.
func (r *Roots) cert(der []byte) *x509.Certificate {
	for _, c := range r.certs {
		if bytes.Equal(c.Raw, der) {
			return c
		}
	}
	return nil
}
