package receipts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestConfigurationPerLogPolicy: a log whose witnesses differ carries its
// own witness_policy in the trust document; its receipts are held to that
// policy and the other logs' to the document's.
func TestConfigurationPerLogPolicy(t *testing.T) {
	vetting := newTestLog(t, "example.test/vetting", 3)
	stict := newTestLog(t, "example.test/stict", 3)
	s, jwks := newSigner(t)
	w1, v1 := witnessSigner(t, "w1.example")
	w2, v2 := witnessSigner(t, "w2.example")
	c := &Configuration{
		Logs: []LogConfiguration{
			{Name: "vetting", Origin: vetting.origin, VKey: vetting.vkey},
			{Name: "stict", Origin: stict.origin, VKey: stict.vkey,
				WitnessPolicy: fmt.Sprintf("log %s\nwitness w2 %s\nquorum w2\n", stict.vkey, v2)},
		},
		ReceiptKeys:   *jwks,
		WitnessPolicy: fmt.Sprintf("log %s\nwitness w1 %s\nquorum w1\n", vetting.vkey, v1),
	}
	trust, err := c.Trust()
	if err != nil {
		t.Fatal(err)
	}
	receipt := func(l *testLog, w note.Signer) string {
		return sign(t, s, &Receipt{Origin: l.origin, Index: 1, Entry: l.entries[1], Proof: l.proof(t, 1, l.checkpoint(t, w))})
	}
	if _, err := Verify(receipt(vetting, w1), trust); err != nil {
		t.Errorf("vetting receipt cosigned by w1: %v", err)
	}
	if _, err := Verify(receipt(stict, w2), trust); err != nil {
		t.Errorf("STI-CT receipt cosigned by w2: %v", err)
	}
	// Each log is held to its own quorum, not the other's.
	if _, err := Verify(receipt(stict, w1), trust); !errors.Is(err, policy.ErrQuorum) {
		t.Errorf("STI-CT receipt cosigned by the vetting log's witness: %v, want ErrQuorum", err)
	}
	if _, err := Verify(receipt(vetting, w2), trust); !errors.Is(err, policy.ErrQuorum) {
		t.Errorf("vetting receipt cosigned by the STI-CT log's witness: %v, want ErrQuorum", err)
	}

	// A log's own policy must list it.
	c.Logs[1].WitnessPolicy = fmt.Sprintf("log %s\nquorum none\n", vetting.vkey)
	if _, err := c.Trust(); err == nil || !strings.Contains(err.Error(), `log "example.test/stict" is not in its witness policy`) {
		t.Errorf("own policy without the log: %v", err)
	}
}

// TestConfigurationNoteVKey: a log's second checkpoint key (note_vkey)
// must be in its policy too, under the log's origin.
func TestConfigurationNoteVKey(t *testing.T) {
	const origin = "example.test/stict"
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctVKey, err := fnote.RFC6962VerifierString(origin, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, noteVKey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	_, otherVKey, err := note.GenerateKey(rand.Reader, "example.test/other")
	if err != nil {
		t.Fatal(err)
	}
	_, jwks := newSigner(t)
	for _, c := range []struct {
		name, noteVKey, policy, err string
	}{
		{"both keys listed", noteVKey, "log " + ctVKey + "\nlog " + noteVKey + "\nquorum none\n", ""},
		{"note key not listed", noteVKey, "log " + ctVKey + "\nquorum none\n", "is not in its witness policy with vkey " + noteVKey},
		{"note key of another origin", otherVKey, "log " + ctVKey + "\nlog " + otherVKey + "\nquorum none\n", "is not in its witness policy with vkey " + otherVKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := &Configuration{
				Logs:          []LogConfiguration{{Name: "stict", Origin: origin, VKey: ctVKey, NoteVKey: c.noteVKey}},
				ReceiptKeys:   *jwks,
				WitnessPolicy: c.policy,
			}
			_, err := conf.Trust()
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("Trust() = %v, want %q", err, c.err)
			}
		})
	}
}
