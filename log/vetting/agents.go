package vetting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// Agent is a registered vetting agent: a name for people, the public key
// its statements verify with, and what the log allows it.
type Agent struct {
	Name string          `json:"name"`
	Key  jose.JSONWebKey `json:"jwk"`
	// Issuer, if set, is the iss the agent's vesper tokens must carry.
	Issuer string `json:"iss,omitempty"`
	// Rate, if set, overrides the registry's default rate for this agent.
	Rate *Rate `json:"rate,omitempty"`
	// Revoked, if set, is when the agent lost the right to log, and why.
	// The key stays listed so that its earlier entries still verify.
	Revoked    *Revocation `json:"revoked,omitempty"`
	Thumbprint [32]byte    `json:"-"`
}

// Rate is how many statements an agent may log: PerSecond on average,
// and up to Burst at once (a token bucket). A batch uses one per statement,
// so a batch larger than Burst is never accepted.
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Bounds of a Rate: a registry asking for more is a mistake.
const (
	MaxRatePerSecond = 1e6
	MaxRateBurst     = 1_000_000
)

func (r *Rate) check() error {
	if !(r.PerSecond > 0) || r.PerSecond > MaxRatePerSecond || math.IsInf(r.PerSecond, 0) {
		return fmt.Errorf("per_second must be above 0 and at most %g", float64(MaxRatePerSecond))
	}
	if r.Burst < 1 || r.Burst > MaxRateBurst {
		return fmt.Errorf("burst must be 1 to %d", MaxRateBurst)
	}
	return nil
}

// String is the rate for people: "10/s, burst 100".
func (r *Rate) String() string {
	if r == nil {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s, burst %d", r.PerSecond, r.Burst)
}

// Revocation ends an agent's right to log at a time, for a reason. The
// log refuses the agent's statements from At on; verifiers accept its
// entries logged (by the leaf's log timestamp) before At, and no others.
type Revocation struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// MaxRevocationReason bounds a revocation's reason, in bytes.
const MaxRevocationReason = 256

func (r *Revocation) check() error {
	if r.At.IsZero() {
		return errors.New("revoked: at is required (an RFC 3339 time)")
	}
	if r.Reason == "" || len(r.Reason) > MaxRevocationReason || !utf8.ValidString(r.Reason) {
		return fmt.Errorf("revoked: reason must be 1 to %d bytes of UTF-8", MaxRevocationReason)
	}
	for _, c := range r.Reason {
		// The reason is printed by verifiers and in problem details.
		if unicode.IsControl(c) {
			return errors.New("revoked: reason has a control character")
		}
	}
	return nil
}

// ErrRevoked is returned, wrapped, for a statement of a revoked agent
// logged, or submitted, at or after its revocation time.
var ErrRevoked = errors.New("agent revoked")

// ValidAt returns nil if the agent may log at t (it is not revoked, or t
// is before its revocation), and an ErrRevoked naming the revocation if
// not. The log checks a submission's time; verifiers check an entry's
// log timestamp (Leaf.LoggedAt).
func (ag *Agent) ValidAt(t time.Time) error {
	if ag.Revoked == nil || t.Before(ag.Revoked.At) {
		return nil
	}
	return fmt.Errorf("%w: agent %q was revoked at %s (%s)", ErrRevoked, ag.Name, ag.Revoked.At.UTC().Format(time.RFC3339Nano), ag.Revoked.Reason)
}

// Agents is the registry of agent keys a vetting log accepts statements
// from, indexed by key thumbprint. Its file form is
//
//	{"default_rate": {"per_second": 10, "burst": 100},
//	 "agents": [{"name": "example-va", "jwk": {"kty": "EC", "crv": "P-256", ...}, "iss": "https://va.example",
//	             "rate": {"per_second": 50, "burst": 1000},
//	             "revoked": {"at": "2026-11-30T04:00:00Z", "reason": "key compromised"}}]}
//
// Names are unique, keys are public P-256 or Ed25519 JWKs, and no key is
// listed twice, revoked or not. default_rate, rate, iss and revoked are
// optional; an agent with no rate of its own and no default_rate is not
// limited. No member may appear twice, and none other is accepted.
type Agents struct {
	defaultRate *Rate
	byKey       map[[32]byte]*Agent
}

// agentsFile is the file form of Agents.
type agentsFile struct {
	DefaultRate *Rate    `json:"default_rate,omitempty"`
	Agents      []*Agent `json:"agents"`
}

// ErrUnknownAgent is returned by Lookup for a key that is not registered.
var ErrUnknownAgent = errors.New("unknown agent key")

// ParseAgents decodes and checks an agents file.
func ParseAgents(b []byte) (*Agents, error) {
	// A member named twice would be read as its last value: a second
	// "revoked": null must not undo a revocation.
	if err := noDuplicateKeys(b); err != nil {
		return nil, fmt.Errorf("agents file: %w", err)
	}
	var f agentsFile
	if err := strictUnmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("agents file: %w", err)
	}
	if f.DefaultRate != nil {
		if err := f.DefaultRate.check(); err != nil {
			return nil, fmt.Errorf("agents file: default_rate: %w", err)
		}
	}
	a := &Agents{defaultRate: f.DefaultRate, byKey: make(map[[32]byte]*Agent, len(f.Agents))}
	names := make(map[string]bool)
	for i, ag := range f.Agents {
		if ag == nil || ag.Name == "" {
			return nil, fmt.Errorf("agents file: agent %d has no name", i)
		}
		if names[ag.Name] {
			return nil, fmt.Errorf("agents file: name %q listed twice", ag.Name)
		}
		names[ag.Name] = true
		if !ag.Key.IsPublic() {
			return nil, fmt.Errorf("agents file: agent %q: the jwk is a private key; list public keys only", ag.Name)
		}
		_, tp, err := keyInfo(&ag.Key)
		if err != nil {
			return nil, fmt.Errorf("agents file: agent %q: %w", ag.Name, err)
		}
		if prev, ok := a.byKey[tp]; ok {
			if prev.Revoked != nil {
				return nil, fmt.Errorf("agents file: agents %q and %q have the same key, and %q is revoked: a revoked key cannot be registered again", prev.Name, ag.Name, prev.Name)
			}
			return nil, fmt.Errorf("agents file: agents %q and %q have the same key", prev.Name, ag.Name)
		}
		if ag.Rate != nil {
			if err := ag.Rate.check(); err != nil {
				return nil, fmt.Errorf("agents file: agent %q: rate: %w", ag.Name, err)
			}
		}
		if ag.Revoked != nil {
			if err := ag.Revoked.check(); err != nil {
				return nil, fmt.Errorf("agents file: agent %q: %w", ag.Name, err)
			}
		}
		ag.Thumbprint = tp
		a.byKey[tp] = ag
	}
	return a, nil
}

// Lookup returns the agent whose key has the given thumbprint.
func (a *Agents) Lookup(thumbprint [32]byte) (*Agent, error) {
	if ag, ok := a.byKey[thumbprint]; ok {
		return ag, nil
	}
	return nil, fmt.Errorf("%w %s", ErrUnknownAgent, b64.EncodeToString(thumbprint[:]))
}

// Len returns the number of registered agents.
func (a *Agents) Len() int { return len(a.byKey) }

// List returns the registered agents, sorted by name.
func (a *Agents) List() []*Agent { return a.sorted() }

// RateOf returns the rate ag may log at: its own, or else the registry's
// default; nil means no limit.
func (a *Agents) RateOf(ag *Agent) *Rate {
	if ag.Rate != nil {
		return ag.Rate
	}
	return a.defaultRate
}

// DefaultRate returns the rate of agents with none of their own; nil
// means no limit.
func (a *Agents) DefaultRate() *Rate { return a.defaultRate }

// Add registers a new agent, whose tokens carry iss issuer if it is not
// empty, and returns the new registry; a is unchanged.
func (a *Agents) Add(name string, key jose.JSONWebKey, issuer string) (*Agents, error) {
	list := a.sorted()
	list = append(list, &Agent{Name: name, Key: key.Public(), Issuer: issuer})
	return reparse(a.defaultRate, list)
}

// Revoke returns a new registry in which the agent name is revoked from
// at, for reason; a is unchanged. An agent already revoked may only have
// its revocation moved earlier: moving it later would make entries
// verifiers refuse valid again.
func (a *Agents) Revoke(name string, at time.Time, reason string) (*Agents, error) {
	return a.edit(name, func(ag *Agent) error {
		if ag.Revoked != nil && !at.Before(ag.Revoked.At) {
			return fmt.Errorf("agent %q is already revoked, at %s; a revocation can only be moved earlier", name, ag.Revoked.At.UTC().Format(time.RFC3339Nano))
		}
		ag.Revoked = &Revocation{At: at.UTC(), Reason: reason}
		return nil
	})
}

// SetRate returns a new registry in which the agent name logs at rate
// (nil: the default rate), or, if name is empty, in which rate is the
// default (nil: no limit); a is unchanged.
func (a *Agents) SetRate(name string, rate *Rate) (*Agents, error) {
	if name == "" {
		return reparse(rate, a.sorted())
	}
	return a.edit(name, func(ag *Agent) error {
		ag.Rate = rate
		return nil
	})
}

// edit returns a new registry in which f has changed a copy of the agent name.
func (a *Agents) edit(name string, f func(*Agent) error) (*Agents, error) {
	list := a.sorted()
	for i, ag := range list {
		if ag.Name != name {
			continue
		}
		c := *ag
		if err := f(&c); err != nil {
			return nil, err
		}
		list[i] = &c
		return reparse(a.defaultRate, list)
	}
	return nil, fmt.Errorf("no agent named %q in the registry", name)
}

// reparse builds a registry through its file form, so that every edit
// passes ParseAgents' checks.
func reparse(def *Rate, list []*Agent) (*Agents, error) {
	b, err := marshalAgents(def, list)
	if err != nil {
		return nil, err
	}
	return ParseAgents(b)
}

// MarshalJSON returns the file form of a, agents sorted by name.
func (a *Agents) MarshalJSON() ([]byte, error) { return marshalAgents(a.defaultRate, a.sorted()) }

func (a *Agents) sorted() []*Agent {
	list := make([]*Agent, 0, len(a.byKey))
	for _, ag := range a.byKey {
		list = append(list, ag)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

func marshalAgents(def *Rate, list []*Agent) ([]byte, error) {
	if list == nil {
		list = []*Agent{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(agentsFile{DefaultRate: def, Agents: list}); err != nil {
		return nil, fmt.Errorf("encoding agents: %w", err)
	}
	return buf.Bytes(), nil
}
