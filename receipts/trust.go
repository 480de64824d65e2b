package receipts

import (
	"encoding/json"
	"fmt"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// MaxConfigurationSize bounds a transparency configuration document.
const MaxConfigurationSize = 1 << 20

// Configuration is the document a vesperlog serves at
// /.well-known/transparency-configuration and a verifier pins: its logs,
// its receipt keys, and the witness policy (C2SP tlog-policy) its
// checkpoints meet. A verifier fetches it once, checks it out of band (the
// vkeys above all), and keeps it; every offline check takes it.
type Configuration struct {
	Logs          []LogConfiguration `json:"logs"`
	ReceiptKeys   KeySet             `json:"receipt_keys"` // with validity windows (keys.go)
	WitnessPolicy string             `json:"witness_policy"`
}

// LogConfiguration describes one log of a Configuration.
type LogConfiguration struct {
	Name      string            `json:"name"`
	Origin    string            `json:"origin"`
	VKey      string            `json:"vkey"`
	URL       string            `json:"url"` // tlog-tiles prefix
	Endpoints map[string]string `json:"endpoints"`
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
	return &c, nil
}

// Trust returns what c pins: its receipt keys and its witness policy, which
// must list each of c's logs with the same vkey.
func (c *Configuration) Trust() (Trust, error) {
	p, err := policy.Parse([]byte(c.WitnessPolicy))
	if err != nil {
		return Trust{}, fmt.Errorf("transparency configuration: witness_policy: %w", err)
	}
	for _, l := range c.Logs {
		pl, ok := p.Log(l.Origin)
		if !ok || pl.VKey != l.VKey {
			return Trust{}, fmt.Errorf("transparency configuration: log %q is not in the witness policy with vkey %s", l.Origin, l.VKey)
		}
	}
	for _, k := range c.ReceiptKeys.Keys {
		if !k.IsPublic() {
			return Trust{}, fmt.Errorf("transparency configuration: receipt key %s is not a public key", k.KeyID)
		}
	}
	keys := c.ReceiptKeys
	return Trust{Keys: &keys, Policy: p}, nil
}
