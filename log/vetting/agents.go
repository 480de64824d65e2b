package vetting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-jose/go-jose/v4"
)

// Agent is a registered vetting agent: a name for people and the public key
// its statements verify with.
type Agent struct {
	Name string          `json:"name"`
	Key  jose.JSONWebKey `json:"jwk"`
	// Issuer, if set, is the iss the agent's vesper tokens must carry.
	Issuer     string   `json:"iss,omitempty"`
	Thumbprint [32]byte `json:"-"`
}

// Agents is the registry of agent keys a vetting log accepts statements
// from, indexed by key thumbprint. Its file form is
//
//	{"agents": [{"name": "example-va", "jwk": {"kty": "EC", "crv": "P-256", ...}, "iss": "https://va.example"}]}
//
// Names are unique, keys are public P-256 or Ed25519 JWKs, and no key is listed twice.
type Agents struct {
	byKey map[[32]byte]*Agent
}

// ErrUnknownAgent is returned by Lookup for a key that is not registered.
var ErrUnknownAgent = errors.New("unknown agent key")

// ParseAgents decodes and checks an agents file.
func ParseAgents(b []byte) (*Agents, error) {
	var f struct {
		Agents []*Agent `json:"agents"`
	}
	if err := strictUnmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("agents file: %w", err)
	}
	a := &Agents{byKey: make(map[[32]byte]*Agent, len(f.Agents))}
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
			return nil, fmt.Errorf("agents file: agents %q and %q have the same key", prev.Name, ag.Name)
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

// Add registers a new agent, whose tokens carry iss issuer if it is not
// empty, and returns the new registry; a is unchanged.
func (a *Agents) Add(name string, key jose.JSONWebKey, issuer string) (*Agents, error) {
	list := a.sorted()
	list = append(list, &Agent{Name: name, Key: key.Public(), Issuer: issuer})
	b, err := marshalAgents(list)
	if err != nil {
		return nil, err
	}
	return ParseAgents(b)
}

// MarshalJSON returns the file form of a, agents sorted by name.
func (a *Agents) MarshalJSON() ([]byte, error) { return marshalAgents(a.sorted()) }

func (a *Agents) sorted() []*Agent {
	list := make([]*Agent, 0, len(a.byKey))
	for _, ag := range a.byKey {
		list = append(list, ag)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

func marshalAgents(list []*Agent) ([]byte, error) {
	if list == nil {
		list = []*Agent{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		Agents []*Agent `json:"agents"`
	}{list}); err != nil {
		return nil, fmt.Errorf("encoding agents: %w", err)
	}
	return buf.Bytes(), nil
}
