package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Limits a run stays within unless Config.NoLimits is set: a load tool
// left running, or given a typo, should not fill a disk.
const (
	MaxDuration = time.Hour
	MaxEntries  = 10_000_000
	MaxRate     = 100_000
)

// Config is one run.
type Config struct {
	// Target is the server's base URL (http://127.0.0.1:8080).
	Target string
	// Rate > 0 runs open loop: requests start at Rate per second, at most
	// MaxInflight at once; a request due while MaxInflight are in flight is
	// dropped. Rate 0 runs closed loop: Concurrency requests always in
	// flight.
	Rate        float64
	MaxInflight int
	Concurrency int
	// The run stops at Duration, or after Count requests, whichever comes
	// first (either may be 0, not both).
	Duration time.Duration
	Count    int
	// Batch > 1 sends add-batch requests of Batch statements.
	Batch int
	// Verify is the share (0 to 1) of receipts verified after the run.
	Verify float64
	// Timeout bounds each request.
	Timeout time.Duration
	// AllowRemote allows a target that is not a loopback address.
	AllowRemote bool
	// NoLimits lifts MaxDuration, MaxEntries and MaxRate.
	NoLimits bool
	// Raw posts opaque entries of RawSize bytes to Tessera's POST /add and
	// polls GET /checkpoint every Poll.
	Raw     bool
	RawSize int
	Poll    time.Duration
	// CT posts certificate chains to a static-ct-api log's
	// Target/ct/v1/add-chain, timed to the SCT. Chains issues n of them
	// (leaf first, DER; each a new certificate) before the run.
	CT     bool
	Chains func(n int) ([][][]byte, error)
	// PID, if set, is the server process whose CPU time and RSS to report.
	PID int
}

// ErrConfig is a run that cannot start as configured.
var ErrConfig = errors.New("load")

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
}

// Check refuses a configuration that cannot run or is over the limits.
func (c *Config) Check() error {
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configErr("target %q is not an http(s) URL", c.Target)
	}
	if !c.AllowRemote && !isLoopback(u.Hostname()) {
		return configErr("target %s is not a loopback address (give -allow-remote to load a server on another host)", u.Host)
	}
	switch {
	case c.Rate < 0 || c.Count < 0 || c.Duration < 0 || c.Concurrency < 0 || c.MaxInflight < 0:
		return configErr("rates, counts and durations must not be negative")
	case c.Duration == 0 && c.Count == 0:
		return configErr("give a duration or a count")
	case c.Rate > 0 && c.MaxInflight < 1:
		return configErr("open loop (a rate) needs a bound on requests in flight")
	case c.Rate == 0 && c.Concurrency < 1:
		return configErr("give a rate (open loop) or a concurrency (closed loop)")
	case c.Rate > 0 && c.Concurrency > 0:
		return configErr("give a rate (open loop) or a concurrency (closed loop), not both")
	case c.Batch < 1 || c.Batch > 1000:
		return configErr("batch %d: want 1 to 1000", c.Batch)
	case c.Raw && c.CT:
		return configErr("raw or ct, not both")
	case (c.Raw || c.CT) && c.Batch > 1:
		return configErr("raw and ct modes send one entry per request")
	case c.CT && c.Chains == nil:
		return configErr("ct mode needs certificate chains to send")
	case c.Raw && (c.RawSize < 1 || c.RawSize > 65535):
		return configErr("raw entries are 1 to 65535 bytes")
	case c.Verify < 0 || c.Verify > 1:
		return configErr("verify share %g: want 0 to 1", c.Verify)
	case c.Timeout <= 0:
		return configErr("a request needs a timeout")
	}
	if c.NoLimits {
		return nil
	}
	if c.Duration > MaxDuration {
		return configErr("duration %v is over %v", c.Duration, MaxDuration)
	}
	if c.Rate > MaxRate {
		return configErr("rate %g/s is over %d/s", c.Rate, MaxRate)
	}
	if e := c.maxRequests() * c.Batch; e > MaxEntries {
		return configErr("the run could send %d entries, over %d", e, MaxEntries)
	}
	return nil
}

// maxRequests is the most requests the run can start; 0 if unbounded
// (closed loop for a duration).
func (c *Config) maxRequests() int {
	n := c.Count
	if c.Rate > 0 && c.Duration > 0 {
		byTime := int(c.Rate*c.Duration.Seconds()) + 1
		if n == 0 || byTime < n {
			n = byTime
		}
	}
	return n
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// outcome is what one request came to.
type outcome struct {
	// status is "200", "503 urn:...:pushback", "transport", ... per entry
	// class; entries is how many entries it counts.
	status  string
	entries int
	// ok is the number of entries logged (including duplicates).
	ok int
}

// sender sends request i (0, 1, ...) and says what it came to. start is
// when it was due; a sender records latencies itself (raw mode records
// them when a checkpoint covers the entry).
type sender interface {
	send(ctx context.Context, i int, start time.Time) []outcome
}

// tally collects outcomes; every field is guarded by mu.
type tally struct {
	mu       sync.Mutex
	requests int
	entries  int
	ok       int
	statuses map[string]int
}

func (t *tally) add(os []outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	for _, o := range os {
		t.entries += o.entries
		t.ok += o.ok
		t.statuses[o.status] += o.entries
	}
}

// drive runs the requests of c through s and returns the tally, the number
// of requests dropped by the in-flight bound, how long the run took (from
// the first request due to the last answer) and its sending window: in
// open loop, to when the last request was due (the rate a server holds is
// measured over it, not over the drain after it); in closed loop, the
// whole run.
func drive(ctx context.Context, c *Config, s sender, limit int) (t *tally, dropped int, took, window time.Duration) {
	t = &tally{statuses: map[string]int{}}
	if c.Count > 0 {
		limit = min(limit, c.Count)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var end time.Time
	if c.Duration > 0 {
		end = start.Add(c.Duration)
	}
	over := func(now time.Time) bool { return !end.IsZero() && !now.Before(end) }
	var wg sync.WaitGroup // the request goroutines, which drive waits for
	if c.Rate > 0 {
		interval := time.Duration(float64(time.Second) / c.Rate)
		slots := make(chan struct{}, c.MaxInflight)
		// Requests are due at start + i*interval; the loop wakes at most
		// every millisecond and starts all that are due, so the rate holds
		// at rates finer than the timer's resolution.
	open:
		for i := 0; i < limit; {
			due := start.Add(time.Duration(i) * interval)
			now := time.Now()
			if over(due) || ctx.Err() != nil {
				break
			}
			if due.After(now) {
				select {
				case <-time.After(min(due.Sub(now), time.Millisecond)):
				case <-ctx.Done():
					break open
				}
				continue
			}
			select {
			case slots <- struct{}{}:
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					defer func() { <-slots }()
					t.add(s.send(ctx, i, due))
				}(i)
			default:
				dropped++
			}
			i++
			window = now.Sub(start)
		}
	} else {
		var next struct {
			sync.Mutex     // guards i
			i          int // the next request to send
		}
		for range c.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					now := time.Now()
					next.Lock()
					i := next.i
					next.i++
					next.Unlock()
					if i >= limit || over(now) {
						return
					}
					t.add(s.send(ctx, i, now))
				}
			}()
		}
	}
	wg.Wait()
	took = time.Since(start)
	if c.Rate == 0 {
		window = took
	}
	return t, dropped, took, window
}

// newHTTPClient keeps as many idle connections as requests in flight, so
// that a run measures the server rather than TCP handshakes.
func newHTTPClient(c *Config) *http.Client {
	n := max(c.MaxInflight, c.Concurrency, 2)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = n
	tr.MaxIdleConnsPerHost = n
	return &http.Client{Transport: tr, Timeout: c.Timeout}
}

// statusOf names an HTTP error answer: its status and, for a problem, its
// type, or its title when the type is about:blank (as vesperlog's are).
func statusOf(code int, problemType, title string) string {
	what := strings.TrimSpace(problemType)
	if what == "" || what == "about:blank" {
		what = strings.TrimSpace(title)
	}
	if what == "" {
		return fmt.Sprint(code)
	}
	return fmt.Sprintf("%d %s", code, what)
}
