package vetting

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestRatesAndRevocation: the registry's default rate, an agent's own,
// and a revocation survive the file form; a revoked agent may log before
// its time and not from it on; its key cannot come back under another name.
func TestRatesAndRevocation(t *testing.T) {
	ed, ec := testKeys(t)
	edPub := jose.JSONWebKey{Key: ed.Public()}
	ecPub := jose.JSONWebKey{Key: ec.Public()}
	a, err := (&Agents{}).Add("va-1", edPub, "")
	if err != nil {
		t.Fatal(err)
	}
	if a, err = a.Add("va-2", ecPub, ""); err != nil {
		t.Fatal(err)
	}
	va1, _ := a.Lookup(mustThumbprint(t, &edPub))
	if a.RateOf(va1) != nil || a.RateOf(va1).String() != "unlimited" {
		t.Fatalf("no rate configured: %v, want unlimited", a.RateOf(va1))
	}

	if a, err = a.SetRate("", &Rate{PerSecond: 10, Burst: 100}); err != nil {
		t.Fatal(err)
	}
	if a, err = a.SetRate("va-2", &Rate{PerSecond: 0.5, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetRate("nobody", &Rate{PerSecond: 1, Burst: 1}); err == nil {
		t.Fatal("rate of an unknown agent set")
	}
	if _, err := a.SetRate("va-1", &Rate{PerSecond: 1, Burst: 0}); err == nil {
		t.Fatal("burst 0 accepted")
	}
	at := time.Date(2026, 11, 30, 4, 0, 0, 500, time.UTC)
	if a, err = a.Revoke("va-1", at, "key compromised"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke("va-1", at.Add(time.Hour), "later"); err == nil || !strings.Contains(err.Error(), "only be moved earlier") {
		t.Fatalf("revocation moved later: %v", err)
	}
	if _, err := a.Revoke("va-1", at, "again"); err == nil {
		t.Fatal("revoked twice at the same time")
	}
	if _, err := a.Revoke("va-2", at, strings.Repeat("x", MaxRevocationReason+1)); err == nil {
		t.Fatal("revocation reason over the bound accepted")
	}

	// Everything survives the file form.
	b, _ := a.MarshalJSON()
	a, err = ParseAgents(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	va1, _ = a.Lookup(mustThumbprint(t, &edPub))
	va2, _ := a.Lookup(mustThumbprint(t, &ecPub))
	if got := a.RateOf(va1); got == nil || *got != (Rate{10, 100}) || a.DefaultRate() != got {
		t.Fatalf("va-1 rate %v, want the default 10/s burst 100", got)
	}
	if got := a.RateOf(va2); got == nil || *got != (Rate{0.5, 2}) {
		t.Fatalf("va-2 rate %v, want its own 0.5/s burst 2", got)
	}
	if va1.Revoked == nil || !va1.Revoked.At.Equal(at) || va1.Revoked.Reason != "key compromised" || va2.Revoked != nil {
		t.Fatalf("revocations: %+v, %+v", va1.Revoked, va2.Revoked)
	}

	// Before its time a revoked agent may still log; from it on, not.
	if err := va1.ValidAt(at.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("just before the revocation: %v", err)
	}
	for _, when := range []time.Time{at, at.Add(time.Millisecond)} {
		err := va1.ValidAt(when)
		if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "key compromised") || !strings.Contains(err.Error(), "2026-11-30T04:00:00.0000005Z") {
			t.Fatalf("ValidAt(%s) = %v, want ErrRevoked naming the time and reason", when, err)
		}
	}
	if err := va2.ValidAt(at.Add(time.Hour)); err != nil {
		t.Fatalf("agent not revoked: %v", err)
	}

	// A revocation may move earlier.
	if b, err := a.Revoke("va-1", at.Add(-time.Hour), "compromised earlier than we knew"); err != nil {
		t.Fatal(err)
	} else if ag, _ := b.Lookup(va1.Thumbprint); !ag.Revoked.At.Equal(at.Add(-time.Hour)) {
		t.Fatalf("revocation not moved: %+v", ag.Revoked)
	}

	// The revoked key stays listed and cannot be registered again.
	if _, err := a.Add("va-1-again", edPub, ""); err == nil || !strings.Contains(err.Error(), "revoked key cannot be registered again") {
		t.Fatalf("revoked key added under another name: %v", err)
	}
	// The original registry is unchanged by the edits made from it.
	if va1.Rate != nil {
		t.Fatal("SetRate changed the agent of the registry it was called on")
	}
}

// TestRevocationTimeOfLeaf: a leaf's log time, to the millisecond, is
// what a revocation is compared with.
func TestRevocationTimeOfLeaf(t *testing.T) {
	l := &Leaf{Timestamp: 1796011200123}
	if got := l.LoggedAt(); !got.Equal(time.Date(2026, 11, 30, 4, 0, 0, 123e6, time.UTC)) {
		t.Fatalf("LoggedAt = %s", got.UTC())
	}
	ag := &Agent{Name: "va", Revoked: &Revocation{At: l.LoggedAt(), Reason: "r"}}
	if err := ag.ValidAt(l.LoggedAt()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("an entry logged at the revocation time: %v, want ErrRevoked", err)
	}
}

func mustThumbprint(t *testing.T, k *jose.JSONWebKey) [32]byte {
	t.Helper()
	tp, err := Thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// FuzzParseAgents: a registry that parses re-encodes to a file that
// parses to the same registry.
func FuzzParseAgents(f *testing.F) {
	ed, ec := testKeys(f)
	a, _ := (&Agents{}).Add("va-1", jose.JSONWebKey{Key: ed.Public()}, "https://va.example")
	a, _ = a.Add("va-2", jose.JSONWebKey{Key: ec.Public()}, "")
	a, _ = a.SetRate("", &Rate{PerSecond: 10, Burst: 100})
	a, _ = a.SetRate("va-2", &Rate{PerSecond: 0.25, Burst: 1})
	a, _ = a.Revoke("va-1", time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC), "key compromised")
	b, _ := a.MarshalJSON()
	f.Add(b)
	f.Add([]byte(`{"agents":[]}`))
	f.Add([]byte(`{"default_rate":{"per_second":1e-3,"burst":1},"agents":[]}`))
	f.Add([]byte(`{"agents":[],"agents":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAgents(b)
		if err != nil {
			return
		}
		once, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAgents(once)
		if err != nil {
			t.Fatalf("re-encoded registry refused: %v\n%s", err, once)
		}
		twice, _ := again.MarshalJSON()
		if string(once) != string(twice) {
			t.Fatalf("re-encoding is not stable:\n%s\n%s", once, twice)
		}
		for _, ag := range a.List() {
			if _, err := json.Marshal(ag); err != nil {
				t.Fatal(err)
			}
		}
	})
}
