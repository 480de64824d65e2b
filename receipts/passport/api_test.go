package passport

import (
	"context"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
)

// configuration is the trust document a vesperlog with f's log would serve.
func (f *fixture) configuration() *receipts.Configuration {
	return &receipts.Configuration{
		Logs: []receipts.LogConfiguration{{Name: "stict", Origin: f.log.Name(), VKey: f.log.VKey(), URL: "http://127.0.0.1/stict/"}},
		STI:  &receipts.STIConfiguration{Roots: []string{base64.StdEncoding.EncodeToString(f.p.Root.DER)}, CTLogs: []string{f.log.Name()}, RequiredSCTs: 1},
	}
}

func TestTrustFromConfiguration(t *testing.T) {
	f := newFixture(t)
	tr, err := TrustFromConfiguration(f.configuration())
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Logs) != 1 || tr.Logs[0].LogID != f.log.LogID() || tr.Logs[0].Origin != f.log.Name() || tr.RequiredSCTs != 1 {
		t.Fatalf("Trust = %+v", tr)
	}
	// It verifies what f's own trust verifies.
	c := f.delegate(t, stitest.DelegateOptions{})
	o := f.opts()
	o.Trust = tr
	if _, err := Verify(context.Background(), f.sign(t, c, f.shaken("12025550101"), "shaken"), o); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*receipts.Configuration)
		msg  string
	}{
		{"no sti", func(c *receipts.Configuration) { c.STI = nil }, "no sti"},
		{"ct log not in logs", func(c *receipts.Configuration) { c.STI.CTLogs = []string{"nowhere.example/stict"} }, "not in logs"},
		{"required_scts above the logs", func(c *receipts.Configuration) { c.STI.RequiredSCTs = 2 }, "required_scts 2"},
		{"root not a certificate", func(c *receipts.Configuration) { c.STI.Roots = []string{"AAAA"} }, "sti roots"},
		{"vkey not RFC 6962", func(c *receipts.Configuration) { c.Logs[0].VKey = "x+1+AQ" }, "ct log"},
		{"bad witness policy", func(c *receipts.Configuration) { c.WitnessPolicy = "nonsense" }, "witness_policy"},
	} {
		cfg := f.configuration()
		c.mod(cfg)
		if tr, err := TrustFromConfiguration(cfg); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: TrustFromConfiguration = %+v, %v; want an error with %q", c.name, tr, err, c.msg)
		}
	}
}

func TestVerifyRequest(t *testing.T) {
	f := newFixture(t)
	caller := f.delegate(t, stitest.DelegateOptions{})
	tok := f.sign(t, caller, f.shaken("12025550101"), "shaken")
	prover := &fakeProver{}
	o := f.opts()
	o.Online = prover
	body := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resp, err := VerifyRequest(context.Background(), body(map[string]any{"passport": tok}), o)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Valid || resp.Header.PPT != "shaken" || !strings.Contains(string(resp.Claims), `"attest":"A"`) ||
		resp.Certificate.TNAuthList != "range:12025550100+100 tn:18001231234" || len(resp.SCTs) != 1 || resp.SCTs[0].Log != f.log.Name() ||
		resp.SCTs[0].LeafIndex == nil || len(resp.Checks) == 0 || len(prover.got) != 0 {
		t.Fatalf("Response = %+v (prover %+v)", resp, prover.got)
	}
	// online: true uses the prover; an Identity header value works too.
	resp, err = VerifyRequest(context.Background(), body(map[string]any{"identity": tok + ";info=<https://cert.example.org/a.cer>", "online": true}), o)
	if err != nil || len(prover.got) != 1 || !strings.Contains(strings.Join(resp.Checks, "\n"), "inclusion: proved") {
		t.Fatalf("online: %+v, %v", resp, err)
	}
	// rsp with the original, and the disclosure of a committed rcd.
	answer := f.delegate(t, stitest.DelegateOptions{TNAuthList: mustTNAuthList(t, stict.TNAuthList{{One: "12155551213"}})})
	rspTok := f.sign(t, answer, f.shaken("12025550101"), "rsp")
	if _, err := VerifyRequest(context.Background(), body(map[string]any{"passport": rspTok, "original": tok}), o); err != nil {
		t.Fatalf("rsp: %v", err)
	}
	committed := f.delegate(t, stitest.DelegateOptions{Extra: []pkix.Extension{stitest.RCDConstraint(stitest.ModeCommit)}})
	rcdTok := f.sign(t, committed, rcdClaims(f, stitest.RCDJSON), "rcd")
	salt := base64.RawURLEncoding.EncodeToString(stitest.RCDSalt)
	resp, err = VerifyRequest(context.Background(), body(map[string]any{"passport": rcdTok, "disclosures": map[string]any{"rcd": map[string]string{"salt": salt}}}), o)
	if err != nil || !strings.Contains(strings.Join(resp.Checks, "\n"), "disclosed salt") {
		t.Fatalf("disclosure: %+v, %v", resp, err)
	}
	_, err = VerifyRequest(context.Background(), body(map[string]any{"passport": rcdTok, "disclosures": map[string]any{"rcd": map[string]string{"salt": base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))}}}), o)
	if !errors.Is(err, ErrCommitment) {
		t.Fatalf("wrong salt: %v", err)
	}

	offline := f.opts()
	for _, c := range []struct {
		name string
		body string
		o    Options
		want error
	}{
		{"not JSON", `passport`, o, ErrRequest},
		{"unknown member", `{"passport":"` + tok + `","extra":1}`, o, ErrRequest},
		{"duplicate member", `{"passport":"` + tok + `","passport":"x"}`, o, ErrRequest},
		{"neither passport nor identity", `{}`, o, ErrRequest},
		{"both", `{"passport":"` + tok + `","identity":"` + tok + `"}`, o, ErrRequest},
		{"two objects", `{"passport":"` + tok + `"}{}`, o, ErrRequest},
		{"salt too short", `{"passport":"` + tok + `","disclosures":{"rcd":{"salt":"AAAA"}}}`, o, ErrRequest},
		{"salt not base64url", `{"passport":"` + tok + `","disclosures":{"rcd":{"salt":"` + strings.Repeat("+", 24) + `"}}}`, o, ErrRequest},
		{"original malformed", `{"passport":"` + tok + `","original":"x.y"}`, o, ErrRequest},
		{"online where the verifier has no prover", `{"passport":"` + tok + `","online":true}`, offline, ErrRequest},
		{"too large", `{"passport":"` + strings.Repeat("a", MaxRequest) + `"}`, o, ErrRequest},
		{"PASSporT malformed", `{"passport":"a.b.c"}`, o, ErrMalformed},
		{"PASSporT stale", `{"passport":"` + tok + `"}`, func() Options { o2 := o; o2.Now = o.Now.Add(120e9); return o2 }(), ErrStale},
	} {
		t.Run(c.name, func(t *testing.T) {
			if resp, err := VerifyRequest(context.Background(), []byte(c.body), c.o); !errors.Is(err, c.want) {
				t.Fatalf("VerifyRequest = %+v, %v; want %v", resp, err, c.want)
			}
		})
	}
	// A PASSporT that fails a check: the answer lists the checks passed.
	stale := o
	stale.Now = o.Now.Add(2 * DefaultFreshness)
	resp, err = VerifyRequest(context.Background(), body(map[string]any{"passport": tok}), stale)
	if !errors.Is(err, ErrStale) || resp == nil || resp.Valid || len(resp.Checks) != 2 || !strings.HasPrefix(resp.Checks[1], "signature:") {
		t.Fatalf("stale: %+v, %v", resp, err)
	}
	if Check(fmt.Errorf("x: %w", ErrRequest)) != "request" || Check(errors.New("other")) != "" {
		t.Error("Check of ErrRequest or of a foreign error")
	}
}
