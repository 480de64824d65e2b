package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/storage"
)

// subcommands are vesperlog's commands beside serving: each takes the
// server's storage flags, so that it acts on the same backend.
var subcommands = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"agents":  runAgents,
	"keys":    runKeys,
	"migrate": runMigrate,
}

// usageError is a command line that cannot run (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// subcommandFlags is a flag set with the storage flags, for a subcommand.
func subcommandFlags(name, synopsis string) (*flag.FlagSet, *config) {
	c := &config{}
	fs := flag.NewFlagSet("vesperlog "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vesperlog %s\n", synopsis)
		fs.PrintDefaults()
	}
	c.storageFlags(fs)
	return fs, c
}

// parseSubcommand parses a subcommand's flags: -h prints its usage and
// returns flag.ErrHelp; any other error is one usage line, which main
// prints.
func parseSubcommand(fs *flag.FlagSet, name string, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.Usage()
			return err
		}
		return usageError{err.Error() + " (vesperlog " + name + " -h for help)"}
	}
	return nil
}

// runAgents reads or replaces the agent registry in a backend. Every
// front end on it sees a change within a second (state.ReloadEvery).
func runAgents(ctx context.Context, args []string, stdout io.Writer) error {
	fs, c := subcommandFlags("agents", "agents [storage flags] get | put FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	verb := fs.Arg(0)
	switch {
	case verb == "get" && fs.NArg() == 1, verb == "put" && fs.NArg() == 2:
	default:
		fs.Usage()
		return usageError{"say get, or put FILE"}
	}
	var file []byte
	if verb == "put" {
		var err error
		if file, err = os.ReadFile(fs.Arg(1)); err != nil {
			return err
		}
	}
	be, err := storage.Open(ctx, c.storage())
	if err != nil {
		return err
	}
	defer be.Close()
	if verb == "get" {
		b, err := be.State().Get(ctx, state.AgentsName)
		if err != nil {
			return fmt.Errorf("agent registry: %w", err)
		}
		_, err = stdout.Write(b)
		return err
	}
	ag, err := state.PutAgents(ctx, be.State(), file)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(1), err)
	}
	fmt.Fprintf(stdout, "agent registry replaced: %d agents\n", ag.Len())
	return nil
}
