package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

func trustFlags(fs *flag.FlagSet) cli.Action {
	server := fs.String("server", "http://127.0.0.1:8080", "the vesperlog server")
	out := fs.String("out", "", "where to pin the transparency configuration")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *out == "" {
			return usageErr("-out is required")
		}
		c, err := client.FetchConfiguration(ctx, nil, *server)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		if err := keys.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		t, err := c.Trust()
		if err != nil {
			return err
		}
		for _, l := range c.Logs {
			fmt.Fprintf(stdout, "log %s\n  vkey %s\n", l.Origin, l.VKey)
			if l.NoteVKey != "" {
				fmt.Fprintf(stdout, "  note vkey %s\n", l.NoteVKey)
			}
			if l.MLDSAVKey != "" {
				fmt.Fprintf(stdout, "  ML-DSA-44 vkey %s\n", l.MLDSAVKey)
			}
			p := t.PolicyFor(l.Origin)
			own := ""
			if l.WitnessPolicy != "" {
				own = " (its own policy)"
			}
			fmt.Fprintf(stdout, "  witnesses: %d, quorum %s%s\n", len(p.Witnesses()), p.Quorum(), own)
		}
		for _, k := range c.ReceiptKeys.Keys {
			state := "current"
			if k.Retired() {
				state = "retired"
			}
			fmt.Fprintf(stdout, "receipt key %s %s, window %s\n", k.KeyID, state, k.Window())
		}
		fmt.Fprintf(stdout, "pinned in %s: compare the vkeys above with what the operator publishes\n", *out)
		return nil
	}
}

// verifyOutput is verify-receipt's JSON output.
type verifyOutput struct {
	Valid  bool         `json:"valid"`
	Origin string       `json:"origin"`
	Index  uint64       `json:"index"`
	Checks []string     `json:"checks"`
	Entry  *vettingJSON `json:"vetting_entry,omitempty"`
}

type vettingJSON struct {
	LogTime     time.Time `json:"log_time"`
	Agent       string    `json:"agent_key"`
	AgentName   string    `json:"agent_name,omitempty"`
	KYCDataHash string    `json:"kyc_data_hash"`
	Subject     string    `json:"sub,omitempty"`
	IssuedAt    time.Time `json:"iat"`
	// AgentRevoked is the agent's revocation, which came after the entry.
	AgentRevoked *vetting.Revocation `json:"agent_revoked,omitempty"`
}

func verifyReceiptFlags(fs *flag.FlagSet) cli.Action {
	trustFile := fs.String("trust", "", "a transparency configuration pinned with vesper trust")
	logVKey := fs.String("log-vkey", "", "the log's verifier key (instead of -trust)")
	jwksFile := fs.String("jwks", "", "the receipt keys, a JWKS file (with -log-vkey)")
	policyFile := fs.String("policy", "", "a C2SP tlog-policy for the log's witnesses (with -log-vkey; default: no witnesses)")
	agentsFile := fs.String("agents", "", "agents registry (GET /vetting/v1/agents): also verify the agent's own signature")
	wantDigest := fs.String("digest", "", "fail unless the entry logs this kyc_data_hash")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if fs.NArg() != 1 {
			return usageErr("give one receipt file, or - for standard input")
		}
		trust, err := loadTrust(*trustFile, *logVKey, *jwksFile, *policyFile)
		if err != nil {
			return err
		}
		var raw []byte
		if fs.Arg(0) == "-" {
			raw, err = io.ReadAll(io.LimitReader(os.Stdin, receipts.MaxReceiptSize+1))
		} else {
			raw, err = os.ReadFile(fs.Arg(0))
		}
		if err != nil {
			return err
		}
		v, err := receipts.Verify(string(raw), trust)
		if err != nil {
			return fmt.Errorf("receipt does not verify: %w", err)
		}
		out := verifyOutput{Valid: true, Origin: v.Origin, Index: v.Index, Checks: v.Checks}

		if leaf, err := vetting.ParseLeaf(v.Entry); err == nil {
			e := &vettingJSON{
				LogTime:     time.UnixMilli(int64(leaf.Timestamp)).UTC(),
				Agent:       b64.EncodeToString(leaf.AgentKey[:]),
				KYCDataHash: b64.EncodeToString(leaf.Digest[:]),
				Subject:     leaf.Subject,
				IssuedAt:    time.Unix(int64(leaf.IssuedAt), 0).UTC(),
			}
			out.Entry = e
			if *agentsFile != "" {
				b, err := os.ReadFile(*agentsFile)
				if err != nil {
					return err
				}
				reg, err := vetting.ParseAgents(b)
				if err != nil {
					return err
				}
				agent, err := reg.Lookup(leaf.AgentKey)
				if err != nil {
					return fmt.Errorf("entry's agent: %w", err)
				}
				if err := leaf.Verify(&agent.Key); err != nil {
					return fmt.Errorf("entry's agent signature: %w", err)
				}
				e.AgentName = agent.Name
				out.Checks = append(out.Checks, fmt.Sprintf("agent signature: the statement verifies with the key of agent %q", agent.Name))
				check, err := vesper.RevocationCheck(agent, leaf, v.Index)
				if err != nil {
					return fmt.Errorf("entry's agent: %w", err)
				}
				if check != "" {
					e.AgentRevoked = agent.Revoked
					out.Checks = append(out.Checks, check)
				}
			}
			if *wantDigest != "" {
				if e.KYCDataHash != *wantDigest {
					return fmt.Errorf("the entry logs kyc_data_hash %s, not %s", e.KYCDataHash, *wantDigest)
				}
				out.Checks = append(out.Checks, "digest: the entry logs kyc_data_hash "+*wantDigest)
			}
		} else if *agentsFile != "" || *wantDigest != "" {
			return fmt.Errorf("the entry is not a vetting log entry: %w", err)
		}

		if *asJSON {
			b, _ := json.MarshalIndent(out, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return nil
		}
		fmt.Fprintf(stdout, "receipt OK: entry %d of %s\n", v.Index, v.Origin)
		for _, c := range out.Checks {
			fmt.Fprintf(stdout, "  ✓ %s\n", c)
		}
		if e := out.Entry; e != nil {
			fmt.Fprintf(stdout, "entry:\n  kyc_data_hash %s\n  agent key     %s %s\n  sub           %s\n  iat           %s\n  logged at     %s\n",
				e.KYCDataHash, e.Agent, e.AgentName, e.Subject, e.IssuedAt.Format(time.RFC3339), e.LogTime.Format(time.RFC3339Nano))
		}
		return nil
	}
}

// readConfiguration reads a pinned transparency configuration (-trust).
func readConfiguration(path string) (*receipts.Configuration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := receipts.ParseConfiguration(b)
	if err != nil {
		return nil, fmt.Errorf("-trust %s is not a transparency configuration (the file vesper trust -out writes): %w", path, err)
	}
	return c, nil
}

// loadTrust builds the verifier's trust from a pinned configuration or from
// a log vkey, a JWKS and an optional policy.
func loadTrust(trustFile, logVKey, jwksFile, policyFile string) (receipts.Trust, error) {
	if trustFile != "" {
		if logVKey != "" || jwksFile != "" || policyFile != "" {
			return receipts.Trust{}, usageErr("-trust stands alone")
		}
		c, err := readConfiguration(trustFile)
		if err != nil {
			return receipts.Trust{}, err
		}
		t, err := c.Trust()
		if err != nil {
			return receipts.Trust{}, fmt.Errorf("-trust %s: %w", trustFile, err)
		}
		return t, nil
	}
	if logVKey == "" || jwksFile == "" {
		return receipts.Trust{}, usageErr("give -trust, or -log-vkey and -jwks")
	}
	if err := oneVKey(logVKey); err != nil {
		return receipts.Trust{}, err
	}
	var p *policy.Policy
	var err error
	if policyFile != "" {
		b, err := os.ReadFile(policyFile)
		if err != nil {
			return receipts.Trust{}, err
		}
		if p, err = policy.Parse(b); err != nil {
			return receipts.Trust{}, fmt.Errorf("-policy %s is not a C2SP tlog-policy file: %w", policyFile, err)
		}
		if !p.HasLogKey(logVKey) {
			name, _, _ := strings.Cut(logVKey, "+")
			return receipts.Trust{}, fmt.Errorf("%s does not list the log %s with that vkey", policyFile, name)
		}
	} else if p, err = policy.ForLog(logVKey); err != nil {
		return receipts.Trust{}, fmt.Errorf("-log-vkey: %w", err)
	}
	jb, err := os.ReadFile(jwksFile)
	if err != nil {
		return receipts.Trust{}, err
	}
	set, err := receipts.ParseKeySet(jb)
	if err == nil && len(set.Keys) == 0 {
		err = errors.New(`it has no "keys"`)
	}
	if err != nil {
		return receipts.Trust{}, fmt.Errorf("-jwks %s is not a JWKS of receipt keys (GET /.well-known/jwks.json): %w", jwksFile, err)
	}
	return receipts.Trust{Keys: set, Policy: p}, nil
}

// oneVKey refuses a -log-vkey that is not one line: "$(cat FILE)" of a
// file with a vkey per log gives several, which the note parser would
// report as a bad octet.
func oneVKey(vkey string) error {
	if n := strings.Count(strings.TrimSpace(vkey), "\n") + 1; n > 1 {
		return fmt.Errorf("-log-vkey is one log's vkey (NAME+HASH+KEY), but it is %d lines: give one of them", n)
	}
	return nil
}
