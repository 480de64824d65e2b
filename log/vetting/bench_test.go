package vetting

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerifyStatement is the log's check of one submitted statement,
// as the add handlers run it: parse the compact JWS, find the agent by its
// key thumbprint in a registry of two, verify the signature.
func BenchmarkVerifyStatement(b *testing.B) {
	ed, ec := testKeys(b)
	agents, err := (&Agents{}).Add("ed-agent", jose.JSONWebKey{Key: ed.Public()}, "")
	if err != nil {
		b.Fatal(err)
	}
	if agents, err = agents.Add("es-agent", jose.JSONWebKey{Key: ec.Public()}, ""); err != nil {
		b.Fatal(err)
	}
	for _, k := range []crypto.Signer{ec, ed} {
		pub := jose.JSONWebKey{Key: k.Public()}
		st, err := NewStatement(&pub, [32]byte{1}, "Business_42", 1763856000)
		if err != nil {
			b.Fatal(err)
		}
		compact, err := st.Sign(k)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(st.Alg.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, sig, err := ParseStatement(compact)
				if err != nil {
					b.Fatal(err)
				}
				a, err := agents.Lookup(s.AgentKey)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.VerifyStatement(s, sig); err != nil {
					b.Fatal(err)
				}
				if s.Digest != st.Digest || s.Subject != st.Subject {
					b.Fatalf("parsed %+v, signed %+v", s, st)
				}
			}
		})
	}
}

// BenchmarkLeafEncoding is a leaf with a subject encoded (on append) and
// decoded (on every audit and receipt check); each result must give the
// other back.
func BenchmarkLeafEncoding(b *testing.B) {
	_, ec := testKeys(b)
	pub := jose.JSONWebKey{Key: ec.Public()}
	st, err := NewStatement(&pub, [32]byte{1}, "Business_42", 1763856000)
	if err != nil {
		b.Fatal(err)
	}
	compact, err := st.Sign(ec)
	if err != nil {
		b.Fatal(err)
	}
	_, sig, err := ParseStatement(compact)
	if err != nil {
		b.Fatal(err)
	}
	leaf := &Leaf{Timestamp: 1763856000123, Alg: st.Alg, AgentKey: st.AgentKey, Digest: st.Digest, IssuedAt: st.IssuedAt, Subject: st.Subject}
	copy(leaf.Signature[:], sig)
	enc, err := leaf.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := leaf.MarshalBinary()
			if err != nil || !bytes.Equal(got, enc) {
				b.Fatalf("MarshalBinary = %x, %v; want %x", got, err, enc)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := ParseLeaf(enc)
			if err != nil || *got != *leaf {
				b.Fatalf("ParseLeaf = %+v, %v; want %+v", got, err, leaf)
			}
		}
	})
}
