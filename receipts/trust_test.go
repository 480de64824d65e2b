package receipts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

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

// TestConfigurationSTI: ParseConfiguration checks the sti member (roots
// are CA certificates, ct_logs are listed logs with RFC 6962 vkeys,
// required_scts is 1 to their number) and the logs' metadata URLs.
func TestConfigurationSTI(t *testing.T) {
	const origin = "example.test/stict"
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctVKey, err := fnote.RFC6962VerifierString(origin, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, edVKey, _ := note.GenerateKey(rand.Reader, "example.test/vetting")
	cert := func(ca bool) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "STI root"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: ca, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	root, leaf := cert(true), cert(false)
	doc := func(sti *STIConfiguration, metadata string) []byte {
		b, err := json.Marshal(Configuration{
			Logs: []LogConfiguration{
				{Name: "vetting", Origin: "example.test/vetting", VKey: edVKey},
				{Name: "stict", Origin: origin, VKey: ctVKey, Metadata: metadata},
			},
			STI: sti,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := &STIConfiguration{Roots: []string{root}, CTLogs: []string{origin}, RequiredSCTs: 1}
	c, err := ParseConfiguration(doc(good, "https://example.test/stict/log.v3.json"))
	if err != nil || c.STI == nil || c.STI.Roots[0] != root || c.Logs[1].Metadata == "" {
		t.Fatalf("ParseConfiguration = %+v, %v", c, err)
	}
	if _, err := ParseConfiguration(doc(&STIConfiguration{Roots: []string{root}, CTLogs: []string{origin}}, "")); err != nil {
		t.Errorf("required_scts 0 (means 1): %v", err)
	}
	if c, err := ParseConfiguration(doc(nil, "")); err != nil || c.STI != nil {
		t.Errorf("no sti: %v", err)
	}
	for _, tc := range []struct {
		name     string
		sti      STIConfiguration
		metadata string
		err      string
	}{
		{"no roots", STIConfiguration{CTLogs: []string{origin}}, "", "0 roots"},
		{"root not base64", STIConfiguration{Roots: []string{"%%"}, CTLogs: []string{origin}}, "", "not standard base64"},
		{"root not a certificate", STIConfiguration{Roots: []string{"AAAA"}, CTLogs: []string{origin}}, "", "root 0"},
		{"root not a CA", STIConfiguration{Roots: []string{leaf}, CTLogs: []string{origin}}, "", "not a CA"},
		{"no ct_logs", STIConfiguration{Roots: []string{root}}, "", "required_scts is 0 with 0 ct_logs"},
		{"ct_log not in logs", STIConfiguration{Roots: []string{root}, CTLogs: []string{"other/stict"}}, "", "not in logs"},
		{"ct_log with an Ed25519 vkey", STIConfiguration{Roots: []string{root}, CTLogs: []string{"example.test/vetting"}}, "", "not an RFC 6962"},
		{"ct_log twice", STIConfiguration{Roots: []string{root}, CTLogs: []string{origin, origin}}, "", "twice"},
		{"required_scts too many", STIConfiguration{Roots: []string{root}, CTLogs: []string{origin}, RequiredSCTs: 2}, "", "required_scts is 2"},
		{"required_scts negative", STIConfiguration{Roots: []string{root}, CTLogs: []string{origin}, RequiredSCTs: -1}, "", "required_scts is -1"},
		{"metadata not a URL", *good, "log.v3.json", "metadata"},
		{"metadata ftp", *good, "ftp://example.test/log.v3.json", "metadata"},
	} {
		_, err := ParseConfiguration(doc(&tc.sti, tc.metadata))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
}
