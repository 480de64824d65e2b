package receipts

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// MaxConfigurationSize bounds a transparency configuration document.
const MaxConfigurationSize = 1 << 20

// Configuration is the document a vesperlog serves at
// /.well-known/transparency-configuration and a verifier pins: its logs,
// its receipt keys, and the witness policy (C2SP tlog-policy) its
// checkpoints meet, or, for a log witnessed by others, that log's own. A
// verifier fetches it once, checks it out of band (the vkeys above all),
// and keeps it; every offline check takes it.
type Configuration struct {
	Logs          []LogConfiguration `json:"logs"`
	ReceiptKeys   KeySet             `json:"receipt_keys"` // with validity windows (keys.go)
	WitnessPolicy string             `json:"witness_policy"`
	// STI, if set, is what a PASSporT verification service pins.
	STI *STIConfiguration `json:"sti,omitempty"`
}

// STIConfiguration is what a PASSporT verification service pins: the STI
// trust anchors, and the STI-CT logs whose SCTs count.
type STIConfiguration struct {
	Roots        []string `json:"roots"`         // standard base64 DER of the STI trust anchors
	CTLogs       []string `json:"ct_logs"`       // origins of Logs entries whose SCTs count
	RequiredSCTs int      `json:"required_scts"` // distinct trusted logs; 0 means 1
}

// LogConfiguration describes one log of a Configuration.
type LogConfiguration struct {
	Name   string `json:"name"`
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	// NoteVKey is an Ed25519 key that also signs each checkpoint of a log
	// whose VKey C2SP witnesses do not take (the STI-CT log's RFC 6962
	// key). The witness policy lists both.
	NoteVKey string `json:"note_vkey,omitempty"`
	// MLDSAVKey is an ML-DSA-44 key (tlog-cosignature, type 0x06) that
	// also signs each checkpoint, as tlog-checkpoint recommends since 2026.
	MLDSAVKey string            `json:"mldsa_vkey,omitempty"`
	URL       string            `json:"url"` // tlog-tiles prefix
	Endpoints map[string]string `json:"endpoints"`
	// WitnessPolicy, if set, is the policy this log's checkpoints meet
	// instead of the Configuration's.
	WitnessPolicy string `json:"witness_policy,omitempty"`
	// Metadata is the URL of the log's metadata (CT log list v3, log.v3.json).
	Metadata string `json:"metadata,omitempty"`
}

// ParseConfiguration decodes a Configuration.
func ParseConfiguration(b []byte) (*Configuration, error) {
	if len(b) > MaxConfigurationSize {
		return nil, fmt.Errorf("transparency configuration is %d bytes, limit %d", len(b), MaxConfigurationSize)
	}
	var c Configuration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("transparency configuration: %w", err)
	}
	// Any JSON object decodes; one that lists no log is some other file.
	if len(c.Logs) == 0 {
		return nil, errors.New("transparency configuration: it lists no logs")
	}
	for _, l := range c.Logs {
		if l.Origin == "" || l.VKey == "" {
			return nil, fmt.Errorf("transparency configuration: log %q has no origin or no vkey", l.Name)
		}
	}
	return &c, nil
}

// Trust returns what c pins: its receipt keys and its witness policies,
// which must list each of c's logs with its vkeys.
func (c *Configuration) Trust() (Trust, error) {
	p, err := policy.Parse([]byte(c.WitnessPolicy))
	if err != nil {
		return Trust{}, fmt.Errorf("transparency configuration: witness_policy: %w", err)
	}
	t := Trust{Policy: p}
	for _, l := range c.Logs {
		lp := p
		if l.WitnessPolicy != "" {
			if lp, err = policy.Parse([]byte(l.WitnessPolicy)); err != nil {
				return Trust{}, fmt.Errorf("transparency configuration: log %q: witness_policy: %w", l.Origin, err)
			}
			if t.Policies == nil {
				t.Policies = make(map[string]*policy.Policy)
			}
			t.Policies[l.Origin] = lp
		}
		if l.VKey == "" {
			return Trust{}, fmt.Errorf("transparency configuration: log %q has no vkey", l.Origin)
		}
		for _, vkey := range []string{l.VKey, l.NoteVKey, l.MLDSAVKey} {
			if name, _, _ := strings.Cut(vkey, "+"); vkey != "" && (name != l.Origin || !lp.HasLogKey(vkey)) {
				return Trust{}, fmt.Errorf("transparency configuration: log %q is not in its witness policy with vkey %s", l.Origin, vkey)
			}
		}
	}
	for _, k := range c.ReceiptKeys.Keys {
		if !k.IsPublic() {
			return Trust{}, fmt.Errorf("transparency configuration: receipt key %s is not a public key", k.KeyID)
		}
	}
	keys := c.ReceiptKeys
	t.Keys = &keys
	return t, nil
}
