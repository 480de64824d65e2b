package load

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSender answers after a fixed delay and records how many requests
// were in flight at once, and which were sent.
type fakeSender struct {
	delay time.Duration

	mu       sync.Mutex // guards the fields below
	inflight int
	peak     int
	sent     map[int]bool
}

func (f *fakeSender) send(ctx context.Context, i int, start time.Time) []outcome {
	f.mu.Lock()
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	if f.sent[i] {
		panic("request sent twice")
	}
	f.sent[i] = true
	f.mu.Unlock()
	time.Sleep(f.delay)
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
	return []outcome{{status: "200", entries: 2, ok: 2}}
}

func baseConfig() Config {
	return Config{Target: "http://127.0.0.1:1", Batch: 1, Timeout: time.Second, RawSize: 1}
}

// TestOpenLoopHoldsRate: with room in flight, every due request is sent, at
// the rate asked, over the duration asked.
func TestOpenLoopHoldsRate(t *testing.T) {
	c := baseConfig()
	c.Rate, c.Duration, c.MaxInflight = 400, time.Second, 50
	f := &fakeSender{delay: 5 * time.Millisecond, sent: map[int]bool{}}
	tl, dropped, took, window := drive(context.Background(), &c, f, c.maxRequests())
	if tl.requests != 400 || dropped != 0 || tl.entries != 800 || tl.statuses["200"] != 800 {
		t.Errorf("sent %d (dropped %d, entries %d); want 400, 0, 800", tl.requests, dropped, tl.entries)
	}
	if window < 950*time.Millisecond || window > 1050*time.Millisecond || took < window {
		t.Errorf("window %v, run %v; want about 1 s, and the run no shorter", window, took)
	}
}

// TestOpenLoopDrops: a slow server does not make the open loop queue: past
// the in-flight bound, due requests are dropped and counted, and in flight
// never exceeds the bound.
func TestOpenLoopDrops(t *testing.T) {
	c := baseConfig()
	c.Rate, c.Duration, c.MaxInflight = 200, time.Second, 4
	f := &fakeSender{delay: 100 * time.Millisecond, sent: map[int]bool{}}
	tl, dropped, _, _ := drive(context.Background(), &c, f, c.maxRequests())
	if f.peak > 4 {
		t.Errorf("%d requests in flight, bound 4", f.peak)
	}
	// 4 slots, 100 ms each: about 40 sent in a second, the rest dropped.
	if tl.requests+dropped != 200 || tl.requests < 30 || tl.requests > 50 {
		t.Errorf("sent %d, dropped %d; want about 40 and 160", tl.requests, dropped)
	}
}

// TestClosedLoop: exactly Count requests, Concurrency at a time.
func TestClosedLoop(t *testing.T) {
	c := baseConfig()
	c.Concurrency, c.Count = 3, 30
	f := &fakeSender{delay: 2 * time.Millisecond, sent: map[int]bool{}}
	tl, dropped, took, window := drive(context.Background(), &c, f, c.maxRequests())
	if tl.requests != 30 || dropped != 0 || len(f.sent) != 30 || f.peak != 3 || window != took {
		t.Errorf("sent %d (%d distinct), peak %d in flight, dropped %d, window %v of %v; want 30, 3, 0, the whole run",
			tl.requests, len(f.sent), f.peak, dropped, window, took)
	}
	// For a duration, it stops at the pool's end if that comes first.
	c.Count, c.Duration = 0, time.Minute
	f = &fakeSender{sent: map[int]bool{}}
	if tl, _, _, _ = drive(context.Background(), &c, f, 10); tl.requests != 10 {
		t.Errorf("sent %d from a pool of 10", tl.requests)
	}
}

// TestCheck: what a run refuses before it starts.
func TestCheck(t *testing.T) {
	for _, row := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Target = "http://192.0.2.1:8080" }, "not a loopback address"},
		{func(c *Config) { c.Target = "http://example.com" }, "not a loopback address"},
		{func(c *Config) { c.Target = "127.0.0.1:8080" }, "not an http(s) URL"},
		{func(c *Config) { c.Duration = 2 * time.Hour }, "over 1h0m0s"},
		{func(c *Config) { c.Rate = 1e6 }, "over 100000/s"},
		{func(c *Config) { c.Duration, c.Rate = time.Hour, 5000 }, "over 10000000"},
		{func(c *Config) { c.Duration, c.Count = 0, 0 }, "a duration or a count"},
		{func(c *Config) { c.MaxInflight = 0 }, "bound on requests in flight"},
		{func(c *Config) { c.Concurrency = 2 }, "not both"},
		{func(c *Config) { c.Batch = 1001 }, "1 to 1000"},
		{func(c *Config) { c.Raw, c.Batch = true, 10 }, "one entry per request"},
		{func(c *Config) { c.Verify = 2 }, "0 to 1"},
	} {
		c := baseConfig()
		c.Rate, c.Duration, c.MaxInflight = 10, time.Second, 10
		row.edit(&c)
		err := c.Check()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), row.want) {
			t.Errorf("%+v: %v; want %q", c, err, row.want)
		}
	}
	c := baseConfig()
	c.Rate, c.Duration, c.MaxInflight = 10, 2*time.Hour, 10
	c.Target, c.AllowRemote, c.NoLimits = "http://192.0.2.1:8080", true, true
	if err := c.Check(); err != nil {
		t.Errorf("with -allow-remote and -no-limits: %v", err)
	}
	for _, h := range []string{"http://localhost:1", "http://[::1]:1", "http://127.0.0.2:1"} {
		c := baseConfig()
		c.Target, c.Concurrency, c.Count = h, 1, 1
		if err := c.Check(); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

// TestMemory reads this process's RSS and its anonymous part from /proc:
// both present, the part no larger than the whole, and the anonymous
// memory at least what a live allocation holds.
func TestMemory(t *testing.T) {
	held := make([]byte, 32<<20)
	for i := range held {
		held[i] = 1 // touched, so resident
	}
	rss, anon, err := memory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if anon < 32<<20 || anon > rss {
		t.Errorf("RSS %d, anonymous %d; want anonymous ≥ 32 MiB (held) and ≤ RSS", rss, anon)
	}
	runtime.KeepAlive(held)
	if _, _, err := memory(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
