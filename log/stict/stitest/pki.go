// Package stitest generates an STI test PKI: a root and an intermediate
// CA, telephone-number and SPC certificates, a precertificate, and one
// certificate for each way a submission can be wrong. Tests generate it
// afresh; `go test ./log/stict -run TestWritePKI -write-pki` writes a copy
// to testdata/sti-pki for people and other tools.
package stitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// OIDs the PKI uses.
var (
	oidTNAuthList = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 26}
	// OIDPoison is RFC 6962's precertificate poison extension.
	OIDPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	// OIDSCTList is RFC 6962's embedded SCT list extension (§3.3).
	OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
	// oidPrecertSigning is the EKU of a Precertificate Signing Certificate.
	oidPrecertSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}
)

// Cert is a certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	DER  []byte
	Key  crypto.Signer
}

// PKI is a generated STI test PKI. Chains are leaf first, without the root.
type PKI struct {
	Root, Intermediate, OtherRoot *Cert
	TN, SPC, Precert              *Cert // good leaves
	Expired, NoTNAuthList         *Cert
	BadTNAuthList, WrongKeyUsage  *Cert
	CriticalTNAuthList            *Cert
	Untrusted                     *Cert // issued under OtherRoot
	// PrecertSigner is a Precertificate Signing Certificate of the
	// intermediate (RFC 6962 §3.1); DelegatedPrecert is signed by it.
	PrecertSigner, DelegatedPrecert *Cert

	now time.Time
}

// NewTN issues another telephone-number certificate under the
// intermediate, named name (for load tests, which need many).
func (p *PKI) NewTN(name string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: name, Organization: []string{"vesperlog test"}},
		NotBefore:       p.now.Add(-time.Hour),
		NotAfter:        p.now.Add(365 * 24 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidTNAuthList, Value: TNAuthListDER}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Intermediate.Cert, key.Public(), p.Intermediate.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, DER: der, Key: key}, nil
}

// Chain returns c's chain as submitted: c, then the intermediate.
func (p *PKI) Chain(c *Cert) [][]byte {
	if c == p.Untrusted {
		return [][]byte{c.DER}
	}
	if c == p.DelegatedPrecert {
		return [][]byte{c.DER, p.PrecertSigner.DER, p.Intermediate.DER}
	}
	return [][]byte{c.DER, p.Intermediate.DER}
}

// TNAuthListDER is a TNAuthList of 100 numbers from 12025550100 and the
// number 18001231234 (RFC 8226 DER, EXPLICIT tags).
var TNAuthListDER = []byte{
	0x30, 0x23,
	0xa1, 0x12, 0x30, 0x10, 0x16, 0x0b, '1', '2', '0', '2', '5', '5', '5', '0', '1', '0', '0', 0x02, 0x01, 0x64,
	0xa2, 0x0d, 0x16, 0x0b, '1', '8', '0', '0', '1', '2', '3', '1', '2', '3', '4',
}

// SPCDER is a TNAuthList naming service provider code 1234.
var SPCDER = []byte{0x30, 0x08, 0xa0, 0x06, 0x16, 0x04, '1', '2', '3', '4'}

// badDER uses a PrintableString where RFC 8226 wants an IA5String, as
// some certificates in the wild do.
var badDER = []byte{0x30, 0x08, 0xa0, 0x06, 0x13, 0x04, '1', '2', '3', '4'}

// Generate makes a new test PKI, valid around now.
func Generate(now time.Time) (*PKI, error) {
	p := &PKI{}
	p.now = now
	var err error
	mk := func(name string, issuer *Cert, ca bool, mod func(*x509.Certificate)) *Cert {
		if err != nil {
			return nil
		}
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			err = kerr
			return nil
		}
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: name, Organization: []string{"vesperlog test"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		if ca {
			tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
			tmpl.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
		} else {
			tmpl.ExtraExtensions = []pkix.Extension{{Id: oidTNAuthList, Value: TNAuthListDER}}
		}
		if mod != nil {
			mod(tmpl)
		}
		parent, signer := tmpl, crypto.Signer(key)
		if issuer != nil {
			parent, signer = issuer.Cert, issuer.Key
		}
		der, cerr := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
		if cerr != nil {
			err = fmt.Errorf("%s: %w", name, cerr)
			return nil
		}
		c, perr := x509.ParseCertificate(der)
		if perr != nil {
			err = perr
			return nil
		}
		return &Cert{Cert: c, DER: der, Key: key}
	}
	withExt := func(id asn1.ObjectIdentifier, critical bool, v []byte) func(*x509.Certificate) {
		return func(t *x509.Certificate) {
			t.ExtraExtensions = []pkix.Extension{{Id: id, Critical: critical, Value: v}}
		}
	}
	p.Root = mk("STI Test Root CA", nil, true, nil)
	p.OtherRoot = mk("Another Root CA", nil, true, nil)
	p.Intermediate = mk("STI Test Intermediate CA", p.Root, true, nil)
	p.TN = mk("STI TN certificate", p.Intermediate, false, nil)
	p.SPC = mk("STI SPC certificate", p.Intermediate, false, withExt(oidTNAuthList, false, SPCDER))
	p.Precert = mk("STI TN precertificate", p.Intermediate, false, func(t *x509.Certificate) {
		t.ExtraExtensions = []pkix.Extension{{Id: oidTNAuthList, Value: TNAuthListDER}, {Id: OIDPoison, Critical: true, Value: []byte{0x05, 0x00}}}
	})
	p.Expired = mk("expired", p.Intermediate, false, func(t *x509.Certificate) {
		t.NotBefore, t.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	})
	p.NoTNAuthList = mk("no TNAuthList", p.Intermediate, false, func(t *x509.Certificate) { t.ExtraExtensions = nil })
	p.BadTNAuthList = mk("malformed TNAuthList", p.Intermediate, false, withExt(oidTNAuthList, false, badDER))
	p.WrongKeyUsage = mk("key encipherment only", p.Intermediate, false, func(t *x509.Certificate) { t.KeyUsage = x509.KeyUsageKeyEncipherment })
	p.CriticalTNAuthList = mk("critical TNAuthList", p.Intermediate, false, withExt(oidTNAuthList, true, TNAuthListDER))
	p.Untrusted = mk("untrusted", p.OtherRoot, false, nil)
	p.PrecertSigner = mk("STI Test Precertificate Signing", p.Intermediate, true, func(t *x509.Certificate) {
		t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidPrecertSigning}
	})
	p.DelegatedPrecert = mk("STI TN precertificate, delegated", p.PrecertSigner, false, func(t *x509.Certificate) {
		t.ExtraExtensions = []pkix.Extension{{Id: oidTNAuthList, Value: TNAuthListDER}, {Id: OIDPoison, Critical: true, Value: []byte{0x05, 0x00}}}
	})
	return p, err
}

// Finalize issues the final certificate of a precertificate of p: the
// same TBSCertificate, with the embedded SCT list (a TLS-encoded
// SignedCertificateTimestampList, RFC 6962 §3.3) where the poison was,
// signed by the intermediate CA.
func (p *PKI) Finalize(precert *Cert, sctList []byte) (*Cert, error) {
	pc := precert.Cert
	var exts []pkix.Extension
	for _, e := range pc.Extensions {
		switch {
		case e.Id.Equal(OIDPoison):
			v, err := asn1.Marshal(sctList)
			if err != nil {
				return nil, err
			}
			exts = append(exts, pkix.Extension{Id: OIDSCTList, Value: v})
		case e.Id.Equal(oidTNAuthList):
			exts = append(exts, e)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: pc.SerialNumber,
		Subject:      pc.Subject,
		NotBefore:    pc.NotBefore,
		NotAfter:     pc.NotAfter,
		KeyUsage:     pc.KeyUsage,
		// The precertificate's issuer (and its key identifier) are the
		// final certificate's, delegated or not.
		AuthorityKeyId:  p.Intermediate.Cert.SubjectKeyId,
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Intermediate.Cert, pc.PublicKey, p.Intermediate.Key)
	if err != nil {
		return nil, fmt.Errorf("final certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, DER: der, Key: precert.Key}, nil
}

// Write saves the PKI as PEM files in dir (private keys too: it is a test PKI).
func (p *PKI) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, c := range map[string]*Cert{
		"root": p.Root, "intermediate": p.Intermediate, "tn": p.TN, "spc": p.SPC, "precert": p.Precert,
		"expired": p.Expired, "no-tnauthlist": p.NoTNAuthList, "bad-tnauthlist": p.BadTNAuthList,
		"wrong-key-usage": p.WrongKeyUsage, "critical-tnauthlist": p.CriticalTNAuthList, "untrusted": p.Untrusted, "other-root": p.OtherRoot,
		"precert-signer": p.PrecertSigner, "delegated-precert": p.DelegatedPrecert,
	} {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), b, 0o644); err != nil {
			return err
		}
		k, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// DelegateOptions describe a delegate certificate (a short-lived TN
// certificate that a PASSporT signer holds).
type DelegateOptions struct {
	Name       string
	TNAuthList []byte           // DER; nil means TNAuthListDER
	Extra      []pkix.Extension // e.g. RCDConstraint(mode)
	Lifetime   time.Duration    // default 30 days (short-lived profile)
}

// NewPrecert issues a precertificate of a delegate certificate under the
// intermediate.
func (p *PKI) NewPrecert(o DelegateOptions) (*Cert, error) {
	return nil, errors.ErrUnsupported
}

// IssueDelegate issues a delegate certificate with embedded SCTs: its
// precertificate goes to each submit, which returns one TLS-encoded SCT
// (from a real log's add-pre-chain); the final certificate carries them
// all. Chain works for the result.
func (p *PKI) IssueDelegate(o DelegateOptions, submit ...func(chain [][]byte) ([]byte, error)) (*Cert, error) {
	return nil, errors.ErrUnsupported
}

// Mode is how a delegate certificate constrains the rcd claim
// (vesperlog profile of draft-wendt-stir-vesper-06 §5).
type Mode int

// Modes of RCDConstraint.
const (
	ModeValue Mode = iota
	ModeHash
	ModeCommit
)

// RCDJSON is the rcd claim value the test constraints permit, in RFC 8225
// §9 canonical form.
const RCDJSON = `{"nam":"Vesper Test Caller"}`

// RCDSalt is the fixed commitment salt of ModeCommit (golden vectors).
var RCDSalt = []byte("vesperlog-test-salt-16B")

// RCDConstraint returns an EnhancedJWTClaimConstraints extension
// (RFC 9118) requiring the rcd claim and permitting RCDJSON in mode m.
func RCDConstraint(m Mode) pkix.Extension { return pkix.Extension{} }

// LoadPKI reads the PKI that Write wrote to dir.
func LoadPKI(dir string) (*PKI, error) { return nil, errors.ErrUnsupported }
