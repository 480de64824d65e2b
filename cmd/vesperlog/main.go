// Command vesperlog runs the vesperlog transparency service: the vetting log
// and, with -stict-roots, the STI-CT log, with their submission APIs,
// tlog-tiles and static-ct-api reads, receipts, and the documents a verifier
// pins. Its subcommands manage a deployment's shared state (agents,
// migrate).
//
// With no flags it serves on 127.0.0.1:8080 from ./vesperlog-data, creating
// the checkpoint and receipt keys on first start. See README.md for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			err := sub(ctx, os.Args[2:], os.Stdout)
			stop()
			switch {
			case errors.Is(err, flag.ErrHelp):
				os.Exit(0)
			case errors.As(err, new(usageError)):
				fmt.Fprintf(os.Stderr, "vesperlog %s: %v\n", os.Args[1], err)
				os.Exit(2)
			case err != nil:
				fmt.Fprintf(os.Stderr, "vesperlog %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	cfg, err := parseConfig(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vesperlog:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "vesperlog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	srv, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Submissions wait for a checkpoint (about one interval, or longer
		// with witnesses), so writes get more time than reads.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	srv.announce(os.Stdout, ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// A second signal stops at once. Entries accepted but not yet
	// published are sequenced and durable: they stay in the log and are
	// published after the next start.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	pending := srv.pending(context.Background())
	if pending != "" {
		slog.Info("shutting down: waiting up to "+shutdownTimeout.String()+" for accepted entries to be published (signal again to stop at once)", "pending", pending)
	} else {
		slog.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- errors.Join(hs.Shutdown(sctx), srv.close(sctx)) }()
	select {
	case err := <-done:
		if err != nil && sctx.Err() != nil && pending != "" {
			return fmt.Errorf("stopped after %s without publishing %s; they stay in the log and are published after the next start", shutdownTimeout, pending)
		}
		return err
	case <-again:
		if pending == "" {
			return errors.New("stopped at once")
		}
		return fmt.Errorf("stopped at once without publishing %s; they stay in the log and are published after the next start", pending)
	}
}

// shutdownTimeout bounds how long a stop waits for accepted entries to be
// published.
const shutdownTimeout = 30 * time.Second
