package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// editRegistry applies edit to the registry in file and writes the result
// back; the file is untouched unless the edited registry parses.
func editRegistry(file string, edit func(*vetting.Agents) (*vetting.Agents, error)) (*vetting.Agents, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("no agent registry at %s (a posix log's is <data>/agents.json)", file)
	}
	if err != nil {
		return nil, err
	}
	reg, err := vetting.ParseAgents(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if reg, err = edit(reg); err != nil {
		return nil, err
	}
	out, err := reg.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if err := keys.WriteFile(file, out, 0o644); err != nil {
		return nil, err
	}
	return reg, nil
}

func agentsRevokeFlags(fs *flag.FlagSet) cli.Action {
	file := fs.String("agents", "", "the log's agent registry file (a posix log's <data>/agents.json)")
	name := fs.String("name", "", "the agent to revoke")
	reason := fs.String("reason", "", fmt.Sprintf("why, for verifiers to read (at most %d bytes)", vetting.MaxRevocationReason))
	atFlag := fs.String("at", "", "when the revocation takes effect, RFC 3339 (default: now); an earlier time also withdraws the entries logged since")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *file == "" || *name == "" || *reason == "" {
			return usageErr("-agents, -name and -reason are required")
		}
		if len(args) > 0 {
			return usageErr("unexpected arguments %q", args)
		}
		// To the millisecond, the precision of a leaf's log time.
		at := time.Now().UTC().Truncate(time.Millisecond)
		if *atFlag != "" {
			t, err := time.Parse(time.RFC3339, *atFlag)
			if err != nil {
				return usageErr("-at %q is not an RFC 3339 time (like 2026-11-30T04:00:00Z)", *atFlag)
			}
			at = t.UTC()
		}
		reg, err := editRegistry(*file, func(reg *vetting.Agents) (*vetting.Agents, error) { return reg.Revoke(*name, at, *reason) })
		if err != nil {
			return err
		}
		for _, ag := range reg.List() {
			if ag.Name == *name {
				fmt.Fprintf(stdout, "revoked agent %q (key %s) at %s: %s\n", ag.Name, b64.EncodeToString(ag.Thumbprint[:]),
					ag.Revoked.At.Format(time.RFC3339Nano), ag.Revoked.Reason)
			}
		}
		fmt.Fprintf(stdout, "the log refuses its statements from then on; verifiers accept its entries logged before then (give them the registry again: GET /vetting/v1/agents)\n")
		return nil
	}
}

func agentsLimitFlags(fs *flag.FlagSet) cli.Action {
	file := fs.String("agents", "", "the log's agent registry file (a posix log's <data>/agents.json)")
	name := fs.String("name", "", "the agent whose rate to set (default: the registry's default rate)")
	perSecond := fs.Float64("rate", 0, "statements per second, on average")
	burst := fs.Int("burst", 0, "statements at once (a batch larger than this is refused)")
	clear := fs.Bool("clear", false, "remove the rate: the agent's own (it gets the default), or the default (agents without one are not limited)")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *file == "" || (*clear == (*perSecond != 0 || *burst != 0)) {
			return usageErr("give -agents and either -rate and -burst, or -clear")
		}
		if len(args) > 0 {
			return usageErr("unexpected arguments %q", args)
		}
		var r *vetting.Rate
		if !*clear {
			r = &vetting.Rate{PerSecond: *perSecond, Burst: *burst}
		}
		reg, err := editRegistry(*file, func(reg *vetting.Agents) (*vetting.Agents, error) { return reg.SetRate(*name, r) })
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "default rate: %s\n", reg.DefaultRate())
		for _, ag := range reg.List() {
			if *name == "" || ag.Name == *name {
				own := ""
				if ag.Rate == nil {
					own = " (the default)"
				}
				fmt.Fprintf(stdout, "agent %q: %s%s\n", ag.Name, reg.RateOf(ag), own)
			}
		}
		return nil
	}
}
