package vesper

import (
	"crypto"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRevokedIssuer: a token of a revoked agent verifies if its entry was
// logged, and it was issued, before the revocation, and the checks show
// the revocation; otherwise it is refused with ErrRevoked. The entry's
// time is the leaf's log timestamp (now, in these tests).
func TestRevokedIssuer(t *testing.T) {
	w := newWorld(t, newKey(t).Key.(crypto.Signer))
	tok := w.issue(t, [32]byte{7}, nil)
	receipt := w.logged(t, w.agentKey.Key.(crypto.Signer), [32]byte{7}, "Business_42")
	vettedInfo := func(o Verification) (*VettedInfoResponse, error) {
		body, _ := json.Marshal(map[string]any{"transparency_receipt": receipt})
		return VerifyVettedInfo(body, o)
	}

	revoke := func(at time.Time) Verification {
		t.Helper()
		agents, err := w.agents.Revoke("example-va", at, "key compromised")
		if err != nil {
			t.Fatal(err)
		}
		o := w.verification()
		o.Issuers = agents
		return o
	}

	// Revoked a millisecond after the entry was logged: still valid, and said.
	o := revoke(now.Add(time.Millisecond))
	v, err := Verify(tok, o)
	if err != nil {
		t.Fatalf("entry logged before the revocation: %v", err)
	}
	last := v.Checks[len(v.Checks)-1]
	for _, want := range []string{`agent "example-va" was revoked at 2025-11-23T00:00:00.001Z (key compromised)`, "entry 2 was logged at 2025-11-23T00:00:00Z, before it", "token issued at 2025-11-23T00:00:00Z"} {
		if !strings.Contains(last, want) {
			t.Errorf("check %q lacks %q", last, want)
		}
	}
	if v.Issuer.Revoked == nil || v.Issuer.Revoked.Reason != "key compromised" {
		t.Errorf("Verified.Issuer.Revoked = %+v", v.Issuer.Revoked)
	}
	res, err := vettedInfo(o)
	if err != nil || !strings.Contains(strings.Join(res.Checks, "\n"), "revoked at") {
		t.Fatalf("receipt of an entry logged before the revocation: %v %+v", err, res)
	}

	// Revoked at the instant the entry was logged: refused.
	o = revoke(now)
	if _, err := Verify(tok, o); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "entry 2 was logged at 2025-11-23T00:00:00Z, after it") {
		t.Fatalf("entry logged at the revocation: %v, want ErrRevoked", err)
	}
	if _, err := vettedInfo(o); !errors.Is(err, ErrRevoked) {
		t.Fatalf("receipt of an entry logged at the revocation: %v, want ErrRevoked", err)
	}

	// An old entry in a token the agent says it made after its revocation.
	later, err := Issue(Issuance{Key: w.agentKey, Issuer: "https://va.example", Subject: "Business_42", IssuedAt: now.Add(time.Hour),
		Lifetime: time.Hour, KYCDataHash: [32]byte{7}, Receipt: receipt})
	if err != nil {
		t.Fatal(err)
	}
	o = revoke(now.Add(time.Minute))
	o.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := Verify(later, o); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "the token was issued at 2025-11-23T01:00:00Z, after it") {
		t.Fatalf("token issued after the revocation: %v, want ErrRevoked", err)
	}
	// The same token without the revocation verifies: the refusal above is the revocation's.
	o.Issuers = w.agents
	if _, err := Verify(later, o); err != nil {
		t.Fatal(err)
	}
}
