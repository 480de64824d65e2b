package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkPprofAddr refuses a -pprof address that is not loopback: profiles
// and traces reveal the server's internals and cost CPU, so they are not
// served to the network. Reach them remotely through a tunnel (ssh -L,
// kubectl port-forward).
func checkPprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-pprof %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-pprof %q: profiling is served on loopback only (such as 127.0.0.1:6060); reach it remotely through a tunnel", addr)
	}
	return nil
}

// startPprof serves net/http/pprof on its own listener at addr, apart
// from the public API. stop shuts it down; it owns the serving goroutine.
func startPprof(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// Not /debug/pprof/cmdline: the command line may hold -db-dsn's password.
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			slog.Error("pprof server stopped", "err", err)
		}
	}()
	slog.Info("serving pprof", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() {
		_ = hs.Close() // profiles in progress are cut short: this is shutdown
		<-done
	}, nil
}
