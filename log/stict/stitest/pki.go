// Package stitest generates an STI test PKI: a root and an intermediate
// CA, telephone-number and SPC certificates, a precertificate, and one
// certificate for each way a submission can be wrong. Tests generate it
// afresh; `go test ./log/stict -run TestWritePKI -write-pki` writes a copy
// to testdata/sti-pki for people and other tools.
package stitest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	// OIDEnhancedJWTClaimConstraints is RFC 9118's extension (id-pe 33).
	OIDEnhancedJWTClaimConstraints = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 33}
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
// signed by the intermediate CA. Every other extension is copied as it
// is and in its place, so that the final TBSCertificate less the SCT list
// is the precertificate's less the poison, which is what the SCTs sign.
func (p *PKI) Finalize(precert *Cert, sctList []byte) (*Cert, error) {
	pc := precert.Cert
	// A precertificate that a Precertificate Signing Certificate signed
	// names that certificate's key; the final certificate names the CA's,
	// as the log rewrote it (RFC 6962 §3.2).
	var aki *pkix.Extension
	if p.PrecertSigner != nil && bytes.Equal(pc.AuthorityKeyId, p.PrecertSigner.Cert.SubjectKeyId) {
		for _, e := range p.PrecertSigner.Cert.Extensions {
			if e.Id.Equal(oidAuthorityKeyID) {
				aki = &e
			}
		}
	}
	var exts []pkix.Extension
	poisons := 0
	for _, e := range pc.Extensions {
		switch {
		case e.Id.Equal(OIDPoison):
			poisons++
			v, err := asn1.Marshal(sctList)
			if err != nil {
				return nil, err
			}
			exts = append(exts, pkix.Extension{Id: OIDSCTList, Value: v})
		case e.Id.Equal(oidAuthorityKeyID) && aki != nil:
			exts = append(exts, *aki)
		default:
			exts = append(exts, e)
		}
	}
	if poisons != 1 {
		return nil, fmt.Errorf("final certificate: the precertificate has %d poison extensions, want 1", poisons)
	}
	// Every extension comes from ExtraExtensions, in order: the template
	// sets no field that would make x509 add one of its own.
	tmpl := &x509.Certificate{
		SerialNumber:       pc.SerialNumber,
		RawSubject:         pc.RawSubject,
		NotBefore:          pc.NotBefore,
		NotAfter:           pc.NotAfter,
		SignatureAlgorithm: pc.SignatureAlgorithm,
		ExtraExtensions:    exts,
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
	for name, cp := range p.files() {
		c := *cp
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
// intermediate: its TNAuthList, then o.Extra, then the poison, all in
// that order (Finalize keeps it).
func (p *PKI) NewPrecert(o DelegateOptions) (*Cert, error) {
	if o.Name == "" {
		o.Name = "STI delegate certificate"
	}
	if o.TNAuthList == nil {
		o.TNAuthList = TNAuthListDER
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 30 * 24 * time.Hour
	}
	now := p.now
	if now.IsZero() {
		now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	exts := []pkix.Extension{{Id: oidTNAuthList, Value: o.TNAuthList}}
	exts = append(exts, o.Extra...)
	exts = append(exts, pkix.Extension{Id: OIDPoison, Critical: true, Value: []byte{0x05, 0x00}})
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: o.Name, Organization: []string{"vesperlog test"}},
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(o.Lifetime),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Intermediate.Cert, key.Public(), p.Intermediate.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: c, DER: der, Key: key}, nil
}

// IssueDelegate issues a delegate certificate with embedded SCTs: its
// precertificate's chain goes to each submit, which returns one
// TLS-encoded SCT (from a real log's add-pre-chain, see AddPreChain); the
// final certificate carries them all, in order. Chain works for the
// result.
func (p *PKI) IssueDelegate(o DelegateOptions, submit ...func(chain [][]byte) ([]byte, error)) (*Cert, error) {
	if len(submit) == 0 {
		return nil, errors.New("a delegate certificate needs at least one log to submit to")
	}
	pre, err := p.NewPrecert(o)
	if err != nil {
		return nil, err
	}
	var scts [][]byte
	for i, f := range submit {
		sct, err := f(p.Chain(pre))
		if err != nil {
			return nil, fmt.Errorf("log %d: %w", i, err)
		}
		scts = append(scts, sct)
	}
	list, err := SCTList(scts...)
	if err != nil {
		return nil, err
	}
	return p.Finalize(pre, list)
}

// SCTList encodes TLS-encoded SCTs as a SignedCertificateTimestampList
// (RFC 6962 §3.3), the contents of the embedded SCT list extension.
func SCTList(scts ...[]byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, s := range scts {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s) })
		}
	})
	return b.Bytes()
}

// AddPreChain returns a submit function for IssueDelegate: it posts the
// chain to the add-pre-chain endpoint of the STI-CT log whose prefix is
// logURL (for example http://127.0.0.1:8080/stict) and returns the SCT of
// the answer, TLS-encoded. hc nil means http.DefaultClient.
func AddPreChain(hc *http.Client, logURL string) func(chain [][]byte) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(chain [][]byte) ([]byte, error) {
		body, err := json.Marshal(ct.AddChainRequest{Chain: chain})
		if err != nil {
			return nil, err
		}
		u := strings.TrimSuffix(logURL, "/") + "/ct/v1/add-pre-chain"
		resp, err := hc.Post(u, "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("POST %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST %s: %s: %s", u, resp.Status, bytes.TrimSpace(b))
		}
		var r ct.AddChainResponse
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("POST %s: %w", u, err)
		}
		sct, err := r.ToSignedCertificateTimestamp()
		if err != nil {
			return nil, fmt.Errorf("POST %s: %w", u, err)
		}
		return cttls.Marshal(*sct)
	}
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

// RCDPermitted returns the permitted value of RCDJSON in mode m, per the
// vesperlog profile of draft-wendt-stir-vesper-06 §5: the canonical JSON
// itself; "sha-256:" and the base64url SHA-256 of it; or "commit:sha-256:"
// and the base64url SHA-256 of RCDSalt followed by it.
func RCDPermitted(m Mode) string {
	switch m {
	case ModeHash:
		h := sha256.Sum256([]byte(RCDJSON))
		return "sha-256:" + base64.RawURLEncoding.EncodeToString(h[:])
	case ModeCommit:
		h := sha256.Sum256(append(slices.Clone(RCDSalt), RCDJSON...))
		return "commit:sha-256:" + base64.RawURLEncoding.EncodeToString(h[:])
	default:
		return RCDJSON
	}
}

// RCDConstraint returns a non-critical EnhancedJWTClaimConstraints
// extension (RFC 9118, id-pe 33) that requires the rcd claim and permits
// RCDPermitted(m). It encodes the DER by hand (EXPLICIT tags, IA5String
// names, UTF8String values), independently of log/stict's encoder, so
// that each checks the other.
func RCDConstraint(m Mode) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { // mustInclude
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("rcd")) })
			})
		})
		b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { // permittedValues
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("rcd")) })
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(RCDPermitted(m))) })
					})
				})
			})
		})
	})
	return pkix.Extension{Id: OIDEnhancedJWTClaimConstraints, Value: b.BytesOrPanic()}
}

// LoadPKI reads the PKI that Write wrote to dir (for `vesper ca
// delegate`); certificates it issues are valid from now.
func LoadPKI(dir string) (*PKI, error) {
	p := &PKI{now: time.Now()}
	for name, c := range p.files() {
		b, err := os.ReadFile(filepath.Join(dir, name+".pem"))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s.pem: not a PEM certificate", name)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s.pem: %w", name, err)
		}
		kb, err := os.ReadFile(filepath.Join(dir, name+".key"))
		if err != nil {
			return nil, err
		}
		kblk, _ := pem.Decode(kb)
		if kblk == nil || kblk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%s.key: not a PEM private key", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s.key: %w", name, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s.key: not a signing key", name)
		}
		*c = &Cert{Cert: cert, DER: blk.Bytes, Key: signer}
	}
	return p, nil
}

// files names the files of Write and LoadPKI.
func (p *PKI) files() map[string]**Cert {
	return map[string]**Cert{
		"root": &p.Root, "intermediate": &p.Intermediate, "tn": &p.TN, "spc": &p.SPC, "precert": &p.Precert,
		"expired": &p.Expired, "no-tnauthlist": &p.NoTNAuthList, "bad-tnauthlist": &p.BadTNAuthList,
		"wrong-key-usage": &p.WrongKeyUsage, "critical-tnauthlist": &p.CriticalTNAuthList, "untrusted": &p.Untrusted, "other-root": &p.OtherRoot,
		"precert-signer": &p.PrecertSigner, "delegated-precert": &p.DelegatedPrecert,
	}
}
