package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/log/state"
)

// agentsGetFlags is vesperlog agents get.
func agentsGetFlags(fs *flag.FlagSet) cli.Action {
	c := &config{}
	c.storageFlags(fs)
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return cli.Usagef("unexpected arguments %q", args)
		}
		be, err := c.openStorage(ctx)
		if err != nil {
			return err
		}
		defer be.Close()
		b, err := be.State().Get(ctx, state.AgentsName)
		if err != nil {
			return fmt.Errorf("agent registry: %w", err)
		}
		_, err = stdout.Write(b)
		return err
	}
}

// agentsPutFlags is vesperlog agents put: it replaces the agent registry
// in a backend. Every front end on it sees a change within a second
// (state.ReloadEvery).
func agentsPutFlags(fs *flag.FlagSet) cli.Action {
	c := &config{}
	c.storageFlags(fs)
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) != 1 {
			return cli.Usagef("give one FILE, the registry to put")
		}
		file, err := os.ReadFile(args[0])
		if err != nil {
			return err
		}
		be, err := c.openStorage(ctx)
		if err != nil {
			return err
		}
		defer be.Close()
		ag, err := state.PutAgents(ctx, be.State(), file)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		fmt.Fprintf(stdout, "agent registry replaced: %d agents\n", ag.Len())
		return nil
	}
}
