package receipts

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
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
		if l.Metadata != "" {
			if u, err := url.Parse(l.Metadata); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("transparency configuration: log %q: metadata %q is not an http(s) URL", l.Origin, l.Metadata)
			}
		}
	}
	if c.STI != nil {
		if err := c.STI.check(c.Logs); err != nil {
			return nil, fmt.Errorf("transparency configuration: sti: %w", err)
		}
	}
	return &c, nil
}

// MaxSTIRoots bounds the STI trust anchors a configuration pins.
const MaxSTIRoots = 64

// check checks s against the configuration's logs with the standard
// library only: receipts stays free of the STI-CT formats (log/stict and
// certificate-transparency-go), which receipts/passport brings in.
func (s *STIConfiguration) check(logs []LogConfiguration) error {
	if len(s.Roots) == 0 || len(s.Roots) > MaxSTIRoots {
		return fmt.Errorf("%d roots; want 1 to %d", len(s.Roots), MaxSTIRoots)
	}
	for i, r := range s.Roots {
		der, err := base64.StdEncoding.DecodeString(r)
		if err != nil {
			return fmt.Errorf("root %d is not standard base64: %w", i, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("root %d: %w", i, err)
		}
		if !cert.BasicConstraintsValid || !cert.IsCA {
			return fmt.Errorf("root %d (%s) is not a CA certificate", i, cert.Subject)
		}
	}
	seen := make(map[string]bool)
	for _, origin := range s.CTLogs {
		if seen[origin] {
			return fmt.Errorf("ct_logs lists %q twice", origin)
		}
		seen[origin] = true
		i := slices.IndexFunc(logs, func(l LogConfiguration) bool { return l.Origin == origin })
		if i < 0 {
			return fmt.Errorf("ct_logs names %q, which is not in logs", origin)
		}
		if !isRFC6962VKey(logs[i].VKey) {
			return fmt.Errorf("ct_logs names %q, whose vkey is not an RFC 6962 (type 0x05) key that signs SCTs", origin)
		}
	}
	if s.RequiredSCTs < 0 || max(s.RequiredSCTs, 1) > len(s.CTLogs) {
		return fmt.Errorf("required_scts is %d with %d ct_logs; want 1 to %d (0 means 1)", s.RequiredSCTs, len(s.CTLogs), len(s.CTLogs))
	}
	return nil
}

// isRFC6962VKey reports whether vkey is a note vkey of type 0x05
// (static-ct-api's RFC6962NoteSignature: the key byte, then the log's DER
// SubjectPublicKeyInfo), from which a verifier derives the log ID and the
// SCT key.
func isRFC6962VKey(vkey string) bool {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 2 || raw[0] != 0x05 {
		return false
	}
	_, err = x509.ParsePKIXPublicKey(raw[1:])
	return err == nil
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
