// Command vesperlog runs the vesperlog transparency service: the vetting log
// and, with -stict-roots, the STI-CT log, with their submission APIs,
// tlog-tiles and static-ct-api reads, receipts, and the documents a verifier
// pins. Its commands manage a deployment's shared state: agents get and
// put, keys rotate-receipt, migrate.
//
// With no flags it serves on 127.0.0.1:8080 from ./vesperlog-data, creating
// the checkpoint and receipt keys on first start, on the posix backend.
// "vesperlog -h" lists every flag and command, and "vesperlog COMMAND -h"
// a command's flags (package cmd/internal/cli); README.md's configuration
// reference is generated from the same flag definitions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := program.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// program is vesperlog: the server, run with flags and no command, and
// the commands that manage a deployment's shared state.
var program = &cli.Program{Name: "vesperlog",
	Default: &cli.Command{Synopsis: "[-config FILE] [flags]",
		Summary: "Serves the vetting log and, with -stict-roots, the STI-CT log.",
		Description: "Serves the vetting log and, with -stict-roots, the STI-CT log: their submission APIs, " +
			"tlog-tiles and static-ct-api reads, receipts, and the trust document verifiers pin. With no flags it " +
			"serves on 127.0.0.1:8080 from ./vesperlog-data, creating the checkpoint and receipt keys on first " +
			"start. Every flag can also be set by name in the YAML file -config names; flags win over the file.",
		Flags: serverFlags},
	Commands: []*cli.Command{
		{Name: "agents get", Synopsis: "[storage flags]",
			Summary: "print the agent registry of a backend",
			Description: "Prints the agent registry (agents.json) of the backend the storage flags name, as the " +
				"server's do. Edit it with vesper agents add, revoke or limit, and load it with agents put.",
			Flags: agentsGetFlags},
		{Name: "agents put", Synopsis: "[storage flags] FILE",
			Summary: "replace the agent registry of a backend",
			Description: "Replaces the agent registry of the backend the storage flags name with FILE, after " +
				"checking it. Every front end on the backend sees the change within a second.",
			Flags: agentsPutFlags},
		{Name: "keys rotate-receipt", Synopsis: "[storage flags] [-receipt-key FILE]",
			Summary:     "give a stopped front end a new receipt key",
			Description: rotateDescription,
			Flags:       rotateReceiptFlags},
		{Name: "migrate", Synopsis: "-from DIR -storage aws|gcp|posix [target storage flags] [-vetting-key FILE] [-stict-key FILE] [-workers N] [-v]",
			Summary:     "copy a posix data directory into another backend",
			Description: migrateDescription,
			Flags:       migrateFlags},
	},
}

// serverFlags is the server's command: every setting of config.
func serverFlags(fs *flag.FlagSet) cli.Action {
	c := &config{}
	file := c.flags(fs)
	return func(ctx context.Context, args []string, _ io.Writer) error {
		if len(args) > 0 {
			// A command after flags: the command comes first.
			if args[0] == "agents" || args[0] == "keys" || args[0] == "migrate" {
				return cli.Usagef("unexpected arguments %q: give the command first, its flags after it (vesperlog %s ... -storage ...)", args, args[0])
			}
			return cli.Usagef("unexpected arguments %q (the server takes flags only)", args)
		}
		if err := c.load(*file, fs); err != nil {
			return cli.Usagef("%v", err)
		}
		if err := setupLogging(c); err != nil {
			return err
		}
		return run(ctx, c)
	}
}

const (
	// readHeaderTimeout bounds a request's head, and a TLS handshake:
	// a client that stalls in either is dropped after it.
	readHeaderTimeout = 10 * time.Second
	maxHeaderBytes    = 16 << 10
)

func run(ctx context.Context, cfg *config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		certs, err := newCertReloader(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return err
		}
		ln = newTLSListener(ln, serverTLSConfig(certs), readHeaderTimeout)
		scheme = "https"
	} else {
		ln = problemListener{ln}
	}
	defer ln.Close()
	if cfg.PublicURL == "" {
		cfg.PublicURL = scheme + "://" + ln.Addr().String()
	}
	if cfg.Pprof != "" {
		stopPprof, err := startPprof(cfg.Pprof)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	srv, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		// Submissions wait for a checkpoint (about one interval, or longer
		// with witnesses), so writes get more time than reads.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes,
	}
	srv.announce(os.Stdout, scheme+"://"+ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		cctx, ccancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer ccancel()
		return errors.Join(fmt.Errorf("serving: %w", err), srv.close(cctx))
	case <-ctx.Done():
	}
	// A second signal stops at once. Entries accepted but not yet
	// published are sequenced and durable: they stay in the log and are
	// published after the next start.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	pending, err := srv.pending(pctx)
	pcancel()
	if err != nil {
		pending = err.Error()
	}
	if pending != "" {
		slog.Info("shutting down: waiting up to "+shutdownTimeout.String()+" for accepted entries to be published (signal again to stop at once)", "pending", pending)
	} else {
		slog.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := hs.Shutdown(sctx)
		if err == nil {
			err = srv.waitPublished(sctx)
		}
		done <- errors.Join(err, srv.close(sctx))
	}()
	select {
	case err := <-done:
		if err != nil && sctx.Err() != nil && pending != "" {
			return fmt.Errorf("stopped after %s without publishing %s; they stay in the log and are published after the next start", shutdownTimeout, pending)
		}
		return err
	case <-again:
		// Closing the logs answers the submissions still waiting with a
		// 503 (the entry stays in the log); give them a moment to go out.
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		go func() { _ = srv.close(cctx) }()
		// The first stop then ends: its Shutdown returns once the waiting
		// handlers have answered. Wait for that, a little.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		if pending == "" {
			return errors.New("stopped at once")
		}
		return fmt.Errorf("stopped at once without publishing %s; they stay in the log and are published after the next start", pending)
	}
}

// shutdownTimeout bounds how long a stop waits for accepted entries to be
// published.
const shutdownTimeout = 30 * time.Second
