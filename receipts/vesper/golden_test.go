package vesper

import (
	"crypto"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// goldenToken is testdata/token-draft-example.json: a token issued by an
// earlier build from the draft's example claim set, with everything a
// verifier needs to check it at a fixed time.
type goldenToken struct {
	Note          string          `json:"note"`
	Token         string          `json:"token"`
	Presentation  string          `json:"presentation"`
	Disclosed     []string        `json:"presentation_discloses"`
	Now           int64           `json:"now"`
	Agents        json.RawMessage `json:"agents"`
	ReceiptKeys   receipts.KeySet `json:"receipt_keys"`
	WitnessPolicy string          `json:"witness_policy"`
	Claims        map[string]any  `json:"claims"`
}

func TestGoldenToken(t *testing.T) {
	const path = "testdata/token-draft-example.json"
	if *update {
		agent := newKey(t)
		w := newWorld(t, agent.Key.(crypto.Signer))
		tok := w.issue(t, [32]byte{42}, nil)
		agents, _ := w.agents.MarshalJSON()
		g := goldenToken{
			Note:          "draft-wendt-stir-vesper §6.4 claim set; frame: telephone_number_rtu clear, rcd and business_ids elements disclosable, other claims disclosable, 3 decoys",
			Token:         tok,
			Presentation:  mustPresent(t, tok, []string{"contact_given_name", "rcd.0"}, nil),
			Disclosed:     []string{"contact_given_name", "rcd.0"},
			Now:           now.Unix(),
			Agents:        agents,
			ReceiptKeys:   *w.trust.Keys,
			WitnessPolicy: w.trust.Policy.String(),
			Claims:        parseClaims(t, draftClaims),
		}
		b, _ := json.MarshalIndent(g, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenToken
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	agents, err := vetting.ParseAgents(g.Agents)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(g.WitnessPolicy))
	if err != nil {
		t.Fatal(err)
	}
	o := Verification{Trust: receipts.Trust{Keys: &g.ReceiptKeys, Policy: p}, Issuers: agents, Now: func() time.Time { return time.Unix(g.Now, 0) }}
	v, err := Verify(g.Token, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(g.Claims)
	for k, val := range parseClaims(t, string(want)) {
		if !reflect.DeepEqual(v.Claims[k], val) {
			t.Errorf("%s = %v, want %v", k, v.Claims[k], val)
		}
	}
	pv, err := Verify(g.Presentation, o)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pv.Disclosed, g.Disclosed) {
		t.Fatalf("presentation discloses %v, want %v", pv.Disclosed, g.Disclosed)
	}
}

func FuzzVerify(f *testing.F) {
	b, err := os.ReadFile("testdata/token-draft-example.json")
	if err != nil {
		f.Fatal(err)
	}
	var g goldenToken
	if err := json.Unmarshal(b, &g); err != nil {
		f.Fatal(err)
	}
	agents, _ := vetting.ParseAgents(g.Agents)
	p, _ := policy.Parse([]byte(g.WitnessPolicy))
	o := Verification{Trust: receipts.Trust{Keys: &g.ReceiptKeys, Policy: p}, Issuers: agents, Now: func() time.Time { return time.Unix(g.Now, 0) }}
	f.Add(g.Token)
	f.Add(g.Presentation)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Verify(s, o)
		if err != nil {
			return
		}
		// Whatever verifies was issued by the registered agent for the logged digest.
		if v.Issuer == nil || v.Leaf == nil || v.KYCDataHash != v.Claims["kyc_data_hash"] {
			t.Fatalf("verified %+v", v)
		}
	})
}
