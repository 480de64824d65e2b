package stitest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"testing"
	"time"
)

// TestLoadPKI: LoadPKI reads back every certificate and key Write writes,
// and the loaded PKI issues precertificates under its intermediate.
func TestLoadPKI(t *testing.T) {
	p, err := Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := p.Write(dir); err != nil {
		t.Fatal(err)
	}
	q, err := LoadPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range p.files() {
		d := *q.files()[name]
		if d == nil || !bytes.Equal(d.DER, (*c).DER) {
			t.Fatalf("%s: not read back", name)
		}
		type pub interface{ Equal(crypto.PublicKey) bool }
		if !d.Key.Public().(pub).Equal((*c).Key.Public()) {
			t.Errorf("%s: another key", name)
		}
	}
	if len(q.Chain(q.DelegatedPrecert)) != 3 || len(q.Chain(q.Untrusted)) != 1 {
		t.Error("Chain does not know the loaded certificates")
	}
	pre, err := q.NewPrecert(DelegateOptions{Name: "d", Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := pre.Cert.CheckSignatureFrom(q.Intermediate.Cert); err != nil || pre.Cert.NotAfter.Sub(time.Now()) > time.Hour {
		t.Errorf("precertificate of the loaded PKI: %v, not after %s", err, pre.Cert.NotAfter)
	}
	if _, err := LoadPKI(t.TempDir()); err == nil {
		t.Error("LoadPKI of an empty directory succeeded")
	}
}

// TestRCDConstraint decodes each mode's extension with encoding/asn1 (an
// independent reader) and checks the RFC 9118 structure, the string types
// and the profile's values.
func TestRCDConstraint(t *testing.T) {
	v := sha256.Sum256([]byte(RCDJSON))
	c := sha256.Sum256([]byte(string(RCDSalt) + RCDJSON))
	for m, want := range map[Mode]string{
		ModeValue:  RCDJSON,
		ModeHash:   "sha-256:" + base64.RawURLEncoding.EncodeToString(v[:]),
		ModeCommit: "commit:sha-256:" + base64.RawURLEncoding.EncodeToString(c[:]),
	} {
		e := RCDConstraint(m)
		if !e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 33}) || e.Critical {
			t.Fatalf("mode %d: extension %v critical %v", m, e.Id, e.Critical)
		}
		var outer struct {
			MustInclude     asn1.RawValue `asn1:"explicit,tag:0"`
			PermittedValues asn1.RawValue `asn1:"explicit,tag:1"`
		}
		if rest, err := asn1.Unmarshal(e.Value, &outer); err != nil || len(rest) != 0 {
			t.Fatalf("mode %d: %v", m, err)
		}
		// EXPLICIT tags: [0] and [1] are constructed and wrap a SEQUENCE.
		for i, r := range []asn1.RawValue{outer.MustInclude, outer.PermittedValues} {
			if r.Class != asn1.ClassContextSpecific || r.Tag != i || !r.IsCompound || len(r.Bytes) == 0 || r.Bytes[0] != 0x30 {
				t.Fatalf("mode %d: [%d] is %x", m, i, r.FullBytes)
			}
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(outer.MustInclude.Bytes, &names); err != nil || len(names) != 1 ||
			names[0].Tag != asn1.TagIA5String || string(names[0].Bytes) != "rcd" {
			t.Fatalf("mode %d: mustInclude %v %v", m, names, err)
		}
		var values []struct {
			Claim  asn1.RawValue
			Values []asn1.RawValue
		}
		if _, err := asn1.Unmarshal(outer.PermittedValues.Bytes, &values); err != nil || len(values) != 1 ||
			values[0].Claim.Tag != asn1.TagIA5String || string(values[0].Claim.Bytes) != "rcd" || len(values[0].Values) != 1 {
			t.Fatalf("mode %d: permittedValues %v", m, err)
		}
		if got := values[0].Values[0]; got.Tag != asn1.TagUTF8String || string(got.Bytes) != want || RCDPermitted(m) != want {
			t.Errorf("mode %d: value %q (tag %d), want %q", m, got.Bytes, got.Tag, want)
		}
	}
	if len(RCDSalt) < 16 {
		t.Error("RCDSalt is under 128 bits")
	}
}
