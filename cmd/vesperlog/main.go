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
	restoreStderr, err := setupLogging(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vesperlog:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run(ctx, cfg)
	restoreStderr()
	if err != nil {
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
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	herr := hs.Shutdown(sctx)
	return errors.Join(herr, srv.close(sctx))
}
