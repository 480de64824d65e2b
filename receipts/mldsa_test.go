package receipts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestVerifyMLDSAWitness: a receipt whose checkpoint carries an ML-DSA-44
// cosignature (tlog-cosignature, vkey type 0x06) verifies offline under a
// trust document whose policy is a mixed 2 of 3, where the ML-DSA witness
// is needed for the quorum; without it, or with it altered, it does not.
func TestVerifyMLDSAWitness(t *testing.T) {
	l := newTestLog(t, "example.test/vetting", 7)
	s, jwks := newSigner(t)
	e1, v1 := witnessSigner(t, "w1.example")
	_, v2 := witnessSigner(t, "w2.example")
	mskey, mvkey, err := fnote.GenerateMLDSAKey("m.example")
	if err != nil {
		t.Fatal(err)
	}
	m, err := fnote.NewSignerForCosignatureV1(mskey)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(Configuration{
		Logs:          []LogConfiguration{{Name: "vetting", Origin: l.origin, VKey: l.vkey}},
		ReceiptKeys:   *jwks,
		WitnessPolicy: fmt.Sprintf("log %s\nwitness w1 %s\nwitness m %s\nwitness w2 %s\ngroup g 2 w1 m w2\nquorum g\n", l.vkey, v1, mvkey, v2),
	})
	c, err := ParseConfiguration(doc)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := c.Trust()
	if err != nil {
		t.Fatalf("a trust document with an ML-DSA-44 witness: %v", err)
	}
	receipt := func(cp []byte) string {
		return sign(t, s, &Receipt{Origin: l.origin, Index: 5, Entry: l.entries[5], Proof: l.proof(t, 5, cp)})
	}

	good := receipt(l.checkpoint(t, e1, m))
	v, err := Verify(good, trust)
	if err != nil {
		t.Fatalf("w1 and m cosigned: %v", err)
	}
	if checks := strings.Join(v.Checks, "\n"); !strings.Contains(checks, `quorum "g" met by m, w1`) {
		t.Errorf("checks do not name the cosigners: %s", checks)
	}
	if _, err := Verify(receipt(l.checkpoint(t, m)), trust); !errors.Is(err, ErrCheckpoint) || !errors.Is(err, policy.ErrQuorum) {
		t.Fatalf("m alone: %v, want ErrCheckpoint wrapping policy.ErrQuorum", err)
	}
	// The ML-DSA cosignature with one bit flipped rejects the checkpoint.
	cp := l.checkpoint(t, e1, m)
	i := bytes.Index(cp, []byte("— m.example "))
	end := i + bytes.IndexByte(cp[i:], '\n')
	sig, err := base64.StdEncoding.DecodeString(string(cp[i+len("— m.example ") : end]))
	if err != nil {
		t.Fatal(err)
	}
	sig[100] ^= 1
	bad := append(append(append([]byte(nil), cp[:i+len("— m.example ")]...), base64.StdEncoding.EncodeToString(sig)...), cp[end:]...)
	if _, err := Verify(receipt(bad), trust); !errors.Is(err, ErrCheckpoint) || !errors.Is(err, policy.ErrCosignature) {
		t.Fatalf("altered ML-DSA cosignature: %v, want ErrCheckpoint wrapping policy.ErrCosignature", err)
	}
}
