package receipts

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// benchLogSize is the tree a benchmark receipt proves inclusion in: a proof
// of 17 hashes.
const benchLogSize = 100_000

// benchReceipt is a receipt for a 221-byte entry (the size of a vetting
// leaf without subject) at the end of a log of benchLogSize entries, by an
// ES256 key, its checkpoint cosigned by witnesses[:cosigners]; and the trust
// that verifies it: the log's key, and a quorum of 2 of 3 witnesses if
// cosigners > 0.
func benchReceipt(b *testing.B, cosigners int) (*Signer, *Receipt, Trust) {
	b.Helper()
	l := newTestLog(b, "example.test/vetting", benchLogSize-1)
	l.append(b, bytes.Repeat([]byte{0xa5}, 221))
	s, jwks := newSigner(b)
	text := "log " + l.vkey + "\n"
	var cosign []note.Signer
	if cosigners > 0 {
		for i := range 3 {
			ws, vk := witnessSigner(b, fmt.Sprintf("w%d.example", i))
			cosign = append(cosign, ws)
			text += fmt.Sprintf("witness w%d %s\n", i, vk)
		}
		text += "group g 2 w0 w1 w2\nquorum g\n"
	} else {
		text += "quorum none\n"
	}
	p, err := policy.Parse([]byte(text))
	if err != nil {
		b.Fatal(err)
	}
	i := int64(benchLogSize - 1)
	r := &Receipt{Origin: l.origin, Index: uint64(i), Entry: l.entries[i], Proof: l.proof(b, i, l.checkpoint(b, cosign[:cosigners]...)), IssuedAt: time.Unix(1763856000, 0)}
	return s, r, Trust{Keys: jwks, Policy: p}
}

// BenchmarkReceiptSign is the log's signature of one receipt (ES256), the
// proof already built.
func BenchmarkReceiptSign(b *testing.B) {
	s, r, trust := benchReceipt(b, 0)
	b.ReportAllocs()
	var jws string
	for b.Loop() {
		var err error
		if jws, err = s.Sign(r); err != nil {
			b.Fatal(err)
		}
	}
	// ECDSA signatures are randomized: the last one must verify.
	if v, err := Verify(jws, trust); err != nil || v.Index != r.Index {
		b.Fatalf("signed receipt does not verify: %v", err)
	}
}

// BenchmarkReceiptVerify is a relying party's check of one receipt: its
// ES256 signature, the checkpoint's signatures (the log's Ed25519, and for
// "witnessed" two of three witnesses' cosignatures), and a 17-hash
// inclusion proof.
func BenchmarkReceiptVerify(b *testing.B) {
	for _, c := range []struct {
		name      string
		cosigners int
	}{{"log-only", 0}, {"witnessed", 2}} {
		b.Run(c.name, func(b *testing.B) {
			s, r, trust := benchReceipt(b, c.cosigners)
			jws, err := s.Sign(r)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				v, err := Verify(jws, trust)
				if err != nil {
					b.Fatal(err)
				}
				if v.Index != r.Index || !bytes.Equal(v.Entry, r.Entry) || v.Checkpoint.Size != benchLogSize {
					b.Fatalf("verified %+v", v)
				}
			}
		})
	}
}
