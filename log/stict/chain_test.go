package stict

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

var writePKI = flag.Bool("write-pki", false, "write a generated test PKI to testdata/sti-pki")

// TestWritePKI regenerates the copy of the test PKI kept for people and
// other tools; the tests generate their own.
func TestWritePKI(t *testing.T) {
	if !*writePKI {
		t.Skip("run with -write-pki")
	}
	p, err := stitest.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write("../../testdata/sti-pki"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateChain(t *testing.T) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		chain   [][]byte
		precert bool
		want    error
	}{
		{"TN certificate", p.Chain(p.TN), false, nil},
		{"SPC certificate", p.Chain(p.SPC), false, nil},
		{"precertificate to add-pre-chain", p.Chain(p.Precert), true, nil},
		{"critical TNAuthList, once parsed", p.Chain(p.CriticalTNAuthList), false, nil},
		{"root included", append(p.Chain(p.TN), p.Root.DER), false, nil},
		{"untrusted chain", p.Chain(p.Untrusted), false, ErrUntrusted},
		{"intermediate missing", [][]byte{p.TN.DER}, false, ErrUntrusted},
		{"no TNAuthList", p.Chain(p.NoTNAuthList), false, ErrTNAuthList},
		{"malformed TNAuthList", p.Chain(p.BadTNAuthList), false, ErrTNAuthList},
		{"expired", p.Chain(p.Expired), false, ErrExpired},
		{"wrong key usage", p.Chain(p.WrongKeyUsage), false, ErrKeyUsage},
		{"precertificate to add-chain", p.Chain(p.Precert), false, ErrPrecert},
		{"certificate to add-pre-chain", p.Chain(p.TN), true, ErrPrecert},
		{"not DER", [][]byte{{0x30, 0x00}}, false, ErrMalformedChain},
		{"empty", nil, false, ErrMalformedChain},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := ValidateChain(c.chain, roots, now, c.precert)
			if c.want == nil {
				if err != nil || len(v.TNAuthList) == 0 || len(v.Chain) < 2 {
					t.Fatalf("ValidateChain = %+v, %v", v, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("ValidateChain = %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzValidateChain: any submitted bytes are refused with one of the
// documented errors, or accepted only as a chain to the test root with a
// parsed TNAuthList.
func FuzzValidateChain(f *testing.F) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		f.Fatal(err)
	}
	roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []*stitest.Cert{p.TN, p.SPC, p.Precert, p.BadTNAuthList} {
		ch := p.Chain(c)
		f.Add(ch[0], ch[1], c == p.Precert)
	}
	f.Fuzz(func(t *testing.T, leaf, inter []byte, precert bool) {
		v, err := ValidateChain([][]byte{leaf, inter}, roots, now, precert)
		if err != nil {
			for _, known := range []error{ErrMalformedChain, ErrUntrusted, ErrExpired, ErrKeyUsage, ErrPrecert, ErrTNAuthList} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("undocumented error: %v", err)
		}
		if len(v.TNAuthList) == 0 || !v.Chain[len(v.Chain)-1].Equal(p.Root.Cert) {
			t.Fatalf("accepted %+v", v)
		}
	})
}

// TestValidateChainConstraints: a leaf's claim constraints are parsed, a
// critical one is accepted once parsed, and a malformed or doubled one
// refuses the chain.
func TestValidateChainConstraints(t *testing.T) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	enh := &Constraints{Enhanced: true, MustInclude: []string{"rcd"}, PermittedValues: []ClaimValues{{Claim: "rcd", Values: []string{`{"nam":"x"}`}}}}
	good := mustMarshalConstraints(t, enh)
	plain := mustMarshalConstraints(t, &Constraints{MustInclude: []string{"rcd"}})
	issue := func(exts ...pkix.Extension) [][]byte {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:    big.NewInt(7),
			Subject:         pkix.Name{CommonName: "constrained"},
			NotBefore:       now.Add(-time.Hour),
			NotAfter:        now.Add(time.Hour),
			KeyUsage:        x509.KeyUsageDigitalSignature,
			ExtraExtensions: append([]pkix.Extension{{Id: OIDTNAuthList, Value: stitest.TNAuthListDER}}, exts...),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Intermediate.Cert, key.Public(), p.Intermediate.Key)
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{der, p.Intermediate.DER}
	}
	for _, c := range []struct {
		name string
		ext  []pkix.Extension
		want *Constraints
		err  error
	}{
		{"none", nil, nil, nil},
		{"critical EnhancedJWTClaimConstraints", []pkix.Extension{{Id: OIDEnhancedJWTClaimConstraints, Critical: true, Value: good}}, enh, nil},
		{"critical JWTClaimConstraints", []pkix.Extension{{Id: OIDJWTClaimConstraints, Critical: true, Value: plain}}, &Constraints{MustInclude: []string{"rcd"}}, nil},
		{"malformed", []pkix.Extension{{Id: OIDEnhancedJWTClaimConstraints, Value: []byte{0x30, 0}}}, nil, ErrConstraints},
		{"both kinds", []pkix.Extension{{Id: OIDEnhancedJWTClaimConstraints, Value: good}, {Id: OIDJWTClaimConstraints, Value: plain}}, nil, ErrConstraints},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := ValidateChain(issue(c.ext...), roots, now, false)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("ValidateChain = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(v.Constraints, c.want) || len(v.Leaf.UnhandledCriticalExtensions) != 0 {
				t.Fatalf("ValidateChain = %+v, %v; want constraints %+v", v, err, c.want)
			}
		})
	}
}
