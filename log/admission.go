package log

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
)

// RequestCost is what a request counts beyond its entries: the HTTP,
// parsing and answer around them. Alone, one statement costs about 1.6
// times what a statement in a batch of 100 does (0.70 against 0.44 ms of
// CPU, issue 15), so a request of n entries counts n + RequestCost, and
// the bound holds the latency of single submissions and of batches alike.
const RequestCost = 1

// EntriesPerCore is how much in flight DefaultMaxInFlight allows per core
// and second of checkpoint interval, counted as Admit counts. In flight
// is rate × latency (Little's law), and latency is at least the
// checkpoint interval, so the bound must be well above what the CPU
// answers in one interval or it caps the rate while the CPU idles: about
// 2,000 batched entries or 1,000 single submissions a second per core,
// each waiting up to two seconds (issue 15 measured a bound of 600
// single entries per core holding the rate at half the CPU's, and 3,000
// refusing 1% of batches at 3,600 entries/s on two cores).
const EntriesPerCore = 4000

// DefaultMaxInFlight is the bound on entries in flight of a server with a
// checkpoint interval of every: EntriesPerCore per core, scaled by the
// interval (an entry is in flight while it waits for its checkpoint, so a
// longer interval holds more of them at the same rate), at least one
// interval's worth at a second.
func DefaultMaxInFlight(every time.Duration) int {
	return int(float64(EntriesPerCore*runtime.GOMAXPROCS(0)) * max(1, every.Seconds()))
}

// ShedRetryAfter is the Retry-After of a request shed by an Admission:
// about the time the entries in flight take to be answered.
const ShedRetryAfter = time.Second

// shedLogEvery spaces the log lines that say load is being shed: one line
// per shed request would cost CPU when there is none to spare.
const shedLogEvery = 10 * time.Second

// Admission bounds the work a server has taken on: the entries it has
// admitted and not yet answered. Past the bound, a submission is refused at
// once (ErrOverloaded, in a problem.Retry), before its body is parsed or its
// signatures checked, so that shedding costs almost no CPU and the latency
// of what is admitted stays bounded instead of growing for everyone while
// requests queue for CPU. Tessera's own pushback (4,096 entries not yet
// integrated) comes far later: the CPU of signature checks and receipts
// runs out first. The CPU-bound pieces of admitted requests run through
// Do, a core each at most, so that new requests are not stuck behind them.
//
// The bound is fixed: a bound cut while checks queue for CPU (CoDel-like)
// was tried and measured worse (issue 15): CPU taken by other processes
// looks like a queue too, and since an entry is in flight while it waits
// for its checkpoint, a bound below rate × interval caps the rate while
// the CPU idles.
//
// One Admission serves every log of a process, since they share its CPU.
// Call pattern, per request of n entries:
//
//	release, err := a.Admit(ctx, log, n)
//	if err != nil { /* answer 503 with Retry-After; log nothing */ }
//	defer release()
//
// A nil *Admission admits everything.
type Admission struct {
	// cpu holds a token for each signature check or receipt running now
	// (Do): at most GOMAXPROCS, so that the rest wait parked, in order,
	// and new requests' goroutines reach Admit promptly instead of
	// queueing behind them for the CPU.
	cpu chan struct{}

	limit   int
	metrics *Metrics

	mu sync.Mutex // guards the fields below
	// inFlight is the entries admitted and not yet released.
	inFlight int
	// shed counts the requests refused since lastLog, when the last
	// "shedding load" line was written.
	shed    int
	lastLog time.Time
}

// NewAdmission returns an Admission that admits at most limit entries at
// once (a request larger than limit only when nothing else is in flight),
// and counts the requests it sheds in m (which may be nil).
func NewAdmission(limit int, m *Metrics) *Admission {
	return &Admission{cpu: make(chan struct{}, runtime.GOMAXPROCS(0)), limit: max(1, limit), metrics: m}
}

// Limit is the bound on entries in flight.
func (a *Admission) Limit() int { return a.limit }

// InFlight is what is admitted and not yet released, counted as Admit
// counts.
func (a *Admission) InFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

// Do runs f, a piece of CPU-bound work of an admitted request (a
// signature check, a receipt), once fewer than GOMAXPROCS such pieces run.
// Pieces must not nest. A nil *Admission runs f at once.
func (a *Admission) Do(f func()) {
	if a == nil {
		f()
		return
	}
	a.cpu <- struct{}{}
	defer func() { <-a.cpu }()
	f()
}

// Admit admits a request of n entries to log, counted as n + RequestCost,
// or refuses it with ErrOverloaded in a problem.Retry if admitting it
// would put more than the limit in flight. The caller must call release once the request is
// answered; calling it again does nothing.
func (a *Admission) Admit(ctx context.Context, log string, n int) (release func(), err error) {
	if a == nil {
		return func() {}, nil
	}
	cost := n + RequestCost
	a.mu.Lock()
	if a.inFlight > 0 && a.inFlight+cost > a.limit {
		inFlight := a.inFlight
		a.shed++
		if now := time.Now(); now.Sub(a.lastLog) >= shedLogEvery {
			slog.Warn("shedding load: the server is at its bound on entries in flight; submissions get 503 with Retry-After",
				"in_flight", inFlight, "max_in_flight", a.limit, "shed_requests", a.shed)
			a.shed, a.lastLog = 0, now
		}
		a.mu.Unlock()
		a.metrics.Shed(ctx, log)
		return nil, &problem.Retry{After: ShedRetryAfter, Err: fmt.Errorf(
			"%w: this server has %d entries in flight, at most %d (-max-inflight); this request of %d was refused before it was checked",
			problem.ErrOverloaded, inFlight, a.limit, n)}
	}
	a.inFlight += cost
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.inFlight -= cost
			a.mu.Unlock()
		})
	}, nil
}
