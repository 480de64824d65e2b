package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// newLogHandler is the slog handler -log-format and -log-level ask for.
func newLogHandler(w io.Writer, format, level string) (slog.Handler, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

// setupLogging makes the configured handler the default, and routes
// Tessera's klog lines through it (Badger's come through slog already:
// storage/antispam gives it a logger).
func setupLogging(cfg *config) error {
	h, err := newLogHandler(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(slog.New(h))
	klog.SetSlogLogger(slog.New(newLibraryHandler(h.WithAttrs([]slog.Attr{slog.String("lib", "tessera")}))))
	return nil
}

// libraryHandler passes a library's records on at a level that fits a
// server's log: its info chatter (klog sends warnings as info too, and
// Tessera's witness warnings repeat every checkpoint interval while a
// witness is down; /readyz, /metrics and failed submissions say that
// better) at debug, and an error that repeats within repeatQuiet at debug.
type libraryHandler struct {
	next slog.Handler
	// mu guards last and lastAt, shared by the handlers WithAttrs makes.
	mu     *sync.Mutex
	last   *string
	lastAt *time.Time
}

const repeatQuiet = 30 * time.Second

func newLibraryHandler(next slog.Handler) *libraryHandler {
	return &libraryHandler{next: next, mu: new(sync.Mutex), last: new(string), lastAt: new(time.Time)}
}

func (h *libraryHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l >= slog.LevelError {
		return h.next.Enabled(ctx, l)
	}
	return h.next.Enabled(ctx, slog.LevelDebug)
}

func (h *libraryHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		r.Level = slog.LevelDebug
	} else if h.repeated(r.Message, r.Time) {
		r.Level = slog.LevelDebug
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *libraryHandler) repeated(msg string, at time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	rep := *h.last == msg && at.Sub(*h.lastAt) < repeatQuiet
	if !rep {
		*h.last, *h.lastAt = msg, at
	}
	return rep
}

func (h *libraryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &libraryHandler{next: h.next.WithAttrs(as), mu: h.mu, last: h.last, lastAt: h.lastAt}
}

func (h *libraryHandler) WithGroup(name string) slog.Handler {
	return &libraryHandler{next: h.next.WithGroup(name), mu: h.mu, last: h.last, lastAt: h.lastAt}
}
