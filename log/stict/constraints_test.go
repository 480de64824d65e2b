package stict

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func hexFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	der, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func mustMarshalConstraints(t testing.TB, c *Constraints) []byte {
	t.Helper()
	der, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestConstraintsGolden checks the parsers and Marshal against encodings
// made elsewhere: the JWTClaimConstraints test vector of pyasn1-modules
// (written by RFC 8226's author), and the EnhancedJWTClaimConstraints of
// RFC 9118's example certificate.
func TestConstraintsGolden(t *testing.T) {
	der := hexFile(t, "testdata/jwtclaimconstraints-rfc8226.hex")
	want := &Constraints{
		MustInclude: []string{"foo"},
		PermittedValues: []ClaimValues{
			{Claim: "foo", Values: []string{"foo1", "foo2", "foo3"}},
			{Claim: "bar", Values: []string{"bar1", "bar2"}},
		},
	}
	got, err := ParseJWTClaimConstraints(der)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseJWTClaimConstraints(RFC 8226 vector) = %+v, %v; want %+v", got, err, want)
	}
	if b := mustMarshalConstraints(t, want); !bytes.Equal(b, der) {
		t.Errorf("Marshal = %x, want %x", b, der)
	}

	p, err := os.ReadFile("testdata/rfc9118-example.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	got, err = CertificateConstraints(cert)
	want = &Constraints{
		Enhanced:        true,
		MustInclude:     []string{"confidence"},
		PermittedValues: []ClaimValues{{Claim: "confidence", Values: []string{"high", "medium"}}},
		MustExclude:     []string{"priority"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("CertificateConstraints(RFC 9118 example) = %+v, %v; want %+v", got, err, want)
	}
	for _, e := range cert.Extensions {
		if e.Id.Equal(OIDEnhancedJWTClaimConstraints) {
			if b := mustMarshalConstraints(t, want); !bytes.Equal(b, e.Value) {
				t.Errorf("Marshal = %x, want the RFC's %x", b, e.Value)
			}
		}
	}
}

// TestConstraintsIndependentEncoding builds the DER with encoding/asn1 raw
// values (EXPLICIT tags by hand, IA5String 22 and UTF8String 12), not with
// this package's Marshal.
func TestConstraintsIndependentEncoding(t *testing.T) {
	str := func(tag int, s string) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(s)}
	}
	seq := func(els ...asn1.RawValue) asn1.RawValue {
		var b []byte
		for _, e := range els {
			d, err := asn1.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, d...)
		}
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: b}
	}
	explicit := func(n int, v asn1.RawValue) asn1.RawValue {
		d, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: n, IsCompound: true, Bytes: d}
	}
	const rcd = `{"nam":"Vesper Test Caller"}`
	v := seq(
		explicit(0, seq(str(asn1.TagIA5String, "rcd"))),
		explicit(1, seq(seq(str(asn1.TagIA5String, "rcd"), seq(str(asn1.TagUTF8String, rcd), str(asn1.TagUTF8String, "sha-256:é"))))),
		explicit(2, seq(str(asn1.TagIA5String, "crn"), str(asn1.TagIA5String, "div"))),
	)
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := &Constraints{Enhanced: true, MustInclude: []string{"rcd"},
		PermittedValues: []ClaimValues{{Claim: "rcd", Values: []string{rcd, "sha-256:é"}}},
		MustExclude:     []string{"crn", "div"}}
	got, err := ParseEnhancedJWTClaimConstraints(der)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEnhancedJWTClaimConstraints = %+v, %v; want %+v", got, err, want)
	}
	if b := mustMarshalConstraints(t, want); !bytes.Equal(b, der) {
		t.Errorf("Marshal = %x, want %x", b, der)
	}
	if _, err := ParseJWTClaimConstraints(der); !errors.Is(err, ErrConstraints) {
		t.Errorf("RFC 8226 parser took mustExclude [2]: %v", err)
	}
}

func TestConstraintsRefused(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The refusals below are small edits of this well-formed value.
	if c, err := ParseJWTClaimConstraints(h("3009 a007 3005 1603 726364")); err != nil || !reflect.DeepEqual(c.MustInclude, []string{"rcd"}) {
		t.Fatalf("control: %+v, %v", c, err)
	}
	long := strings.Repeat("a", maxConstraintStr+1)
	many := make([]string, maxClaimNames+1)
	for i := range many {
		many[i] = "c"
	}
	for _, c := range []struct {
		name     string
		der      []byte
		enhanced bool
	}{
		{"empty SEQUENCE (WITH COMPONENTS: one present)", h("3000"), false},
		{"implicit [0] instead of EXPLICIT", h("3007 8005 1603 726364"), false},
		{"PrintableString claim name (IA5String)", h("3009 a007 3005 1303 726364"), false},
		{"UTF8String claim name (IA5String)", h("3009 a007 3005 0c03 726364"), false},
		{"IA5String permitted value (UTF8String)", h("3012 a110 300e 300c 1603 726364 3005 1603 616263"), false},
		{"non-ASCII IA5String name", h("3009 a007 3005 1603 72e964"), false},
		{"invalid UTF-8 value", h("3011 a10f 300d 300b 1603 726364 3004 0c02 c328"), false},
		{"empty mustInclude (SIZE (1..MAX))", h("3004 a002 3000"), false},
		{"empty permitted values", h("300c a10a 3008 3006 1603 726364 3000"), false},
		{"empty permittedValues list", h("3004 a102 3000"), false},
		{"empty claim name", h("3006 a004 3002 1600"), false},
		{"mustExclude [2] in RFC 8226", h("3009 a207 3005 1603 63726e"), false},
		{"components out of order", h("3012 a207 3005 1603 63726e a007 3005 1603 726364"), true},
		{"component repeated", h("3012 a007 3005 1603 726364 a007 3005 1603 726364"), true},
		{"unknown component [3]", h("3009 a307 3005 1603 726364"), true},
		{"trailing bytes after the SEQUENCE", h("3009 a007 3005 1603 726364 00"), true},
		{"trailing bytes inside [0]", h("300b a009 3005 1603 726364 0500"), true},
		{"BER indefinite length", h("3080 a007 3005 1603 726364 0000"), true},
		{"truncated", h("3009 a007 3005 1603 7263"), true},
		{"not a SEQUENCE", h("0400"), true},
		{"name too long", mustMarshalConstraintsUnchecked(Constraints{Enhanced: true, MustInclude: []string{long}}), true},
		{"too many names", mustMarshalConstraintsUnchecked(Constraints{Enhanced: true, MustExclude: many}), true},
		{"too many values", mustMarshalConstraintsUnchecked(Constraints{Enhanced: true, PermittedValues: []ClaimValues{{Claim: "rcd", Values: many}}}), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			parse := ParseJWTClaimConstraints
			if c.enhanced {
				parse = ParseEnhancedJWTClaimConstraints
			}
			if got, err := parse(c.der); !errors.Is(err, ErrConstraints) {
				t.Fatalf("parse(%x) = %+v, %v; want ErrConstraints", c.der, got, err)
			}
		})
	}
	for _, c := range []Constraints{
		{},
		{MustExclude: []string{"crn"}}, // RFC 8226 has no mustExclude
		{Enhanced: true, MustInclude: []string{""}},
		{Enhanced: true, MustInclude: []string{"é"}},
		{Enhanced: true, PermittedValues: []ClaimValues{{Claim: "rcd"}}},
		{Enhanced: true, PermittedValues: []ClaimValues{{Claim: "rcd", Values: []string{"\xff"}}}},
		{Enhanced: true, MustInclude: many},
	} {
		if der, err := c.Marshal(); !errors.Is(err, ErrConstraints) {
			t.Errorf("Marshal(%+v) = %x, %v; want ErrConstraints", c, der, err)
		}
	}
}

// mustMarshalConstraintsUnchecked encodes c as Marshal would, bypassing its
// limits, to test that the parsers enforce them.
func mustMarshalConstraintsUnchecked(c Constraints) []byte {
	str := func(tag int, s string) []byte {
		b, _ := asn1.Marshal(asn1.RawValue{Tag: tag, Bytes: []byte(s)})
		return b
	}
	wrap := func(class, tag int, parts ...[]byte) []byte {
		b, _ := asn1.Marshal(asn1.RawValue{Class: class, Tag: tag, IsCompound: true, Bytes: bytes.Join(parts, nil)})
		return b
	}
	names := func(ns []string) []byte {
		var parts [][]byte
		for _, n := range ns {
			parts = append(parts, str(asn1.TagIA5String, n))
		}
		return wrap(0, asn1.TagSequence, parts...)
	}
	var comps [][]byte
	if c.MustInclude != nil {
		comps = append(comps, wrap(asn1.ClassContextSpecific, 0, names(c.MustInclude)))
	}
	if c.PermittedValues != nil {
		var entries [][]byte
		for _, cv := range c.PermittedValues {
			var vals [][]byte
			for _, v := range cv.Values {
				vals = append(vals, str(asn1.TagUTF8String, v))
			}
			entries = append(entries, wrap(0, asn1.TagSequence, str(asn1.TagIA5String, cv.Claim), wrap(0, asn1.TagSequence, vals...)))
		}
		comps = append(comps, wrap(asn1.ClassContextSpecific, 1, wrap(0, asn1.TagSequence, entries...)))
	}
	if c.MustExclude != nil {
		comps = append(comps, wrap(asn1.ClassContextSpecific, 2, names(c.MustExclude)))
	}
	return wrap(0, asn1.TagSequence, comps...)
}

func TestCertificateConstraints(t *testing.T) {
	ext := func(id asn1.ObjectIdentifier, der []byte) pkix.Extension { return pkix.Extension{Id: id, Value: der} }
	plain := mustMarshalConstraints(t, &Constraints{MustInclude: []string{"rcd"}})
	enh := mustMarshalConstraints(t, &Constraints{Enhanced: true, MustExclude: []string{"crn"}})
	for _, c := range []struct {
		name string
		exts []pkix.Extension
		want *Constraints
		err  bool
	}{
		{"none", nil, nil, false},
		{"RFC 8226", []pkix.Extension{ext(OIDJWTClaimConstraints, plain)}, &Constraints{MustInclude: []string{"rcd"}}, false},
		{"RFC 9118", []pkix.Extension{ext(OIDEnhancedJWTClaimConstraints, enh)}, &Constraints{Enhanced: true, MustExclude: []string{"crn"}}, false},
		{"both (ambiguous)", []pkix.Extension{ext(OIDJWTClaimConstraints, plain), ext(OIDEnhancedJWTClaimConstraints, enh)}, nil, true},
		{"malformed", []pkix.Extension{ext(OIDJWTClaimConstraints, []byte{0x30, 0})}, nil, true},
		{"RFC 9118 DER under the RFC 8226 OID", []pkix.Extension{ext(OIDJWTClaimConstraints, enh)}, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := CertificateConstraints(&x509.Certificate{Extensions: c.exts})
			if c.err != errors.Is(err, ErrConstraints) || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("CertificateConstraints = %+v, %v; want %+v (error %v)", got, err, c.want, c.err)
			}
		})
	}
	e, err := (&Constraints{Enhanced: true, MustExclude: []string{"crn"}}).Extension()
	if err != nil || !e.Id.Equal(OIDEnhancedJWTClaimConstraints) || e.Critical || !bytes.Equal(e.Value, enh) {
		t.Errorf("Extension = %+v, %v", e, err)
	}
}

func fuzzConstraints(f *testing.F, parse func([]byte) (*Constraints, error)) {
	f.Add(hexFile(f, "testdata/jwtclaimconstraints-rfc8226.hex"))
	f.Add(mustMarshalConstraints(f, &Constraints{Enhanced: true, MustInclude: []string{"rcd"},
		PermittedValues: []ClaimValues{{Claim: "rcd", Values: []string{`{"nam":"x"}`}}}, MustExclude: []string{"crn"}}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := parse(der)
		if err != nil {
			return
		}
		// Round trip: what parses re-encodes to the same bytes (DER is
		// unique), and parses to the same value.
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed %x to %+v, which does not marshal: %v", der, c, err)
		}
		if !bytes.Equal(b, der) {
			t.Fatalf("parsed %x, re-encodes as %x", der, b)
		}
		if c2, err := parse(b); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("re-parse = %+v, %v; want %+v", c2, err, c)
		}
	})
}

func FuzzParseJWTClaimConstraints(f *testing.F) { fuzzConstraints(f, ParseJWTClaimConstraints) }

func FuzzParseEnhancedJWTClaimConstraints(f *testing.F) {
	fuzzConstraints(f, ParseEnhancedJWTClaimConstraints)
}
