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

// EntriesPerCore is how many entries in flight DefaultMaxInFlight allows
// per core: about what one core answers in a second (an ES256 statement
// check, a receipt signature and the HTTP around them take ~0.9 ms of CPU
// per entry, measured on a 2-core machine, issue 15), so that an accepted
// entry waits about a second for CPU beyond its checkpoint interval.
const EntriesPerCore = 600

// DefaultMaxInFlight is the bound on entries in flight of a server with a
// checkpoint interval of every: EntriesPerCore per core, scaled by the
// interval (an entry is in flight while it waits for its checkpoint, so a
// longer interval holds more of them at the same rate), at least one
// interval's worth at a second.
func DefaultMaxInFlight(every time.Duration) int {
	return int(float64(EntriesPerCore*runtime.GOMAXPROCS(0)) * max(1, every.Seconds()))
}

// QueueTarget and QueueInterval drive the adaptive part of an Admission,
// after CoDel: if in a whole QueueInterval no request got through its
// checks in less than QueueTarget (per wave of statements checked in
// parallel), requests are queueing for CPU, and the bound in effect is cut
// by a fifth, down to a quarter of the limit (CPU taken by other processes
// also looks like a queue; the floor keeps the server useful then); while
// they are not, and the bound was nearly reached, it
// grows back by a twentieth of the limit per interval. The interval is at
// least a checkpoint interval: the receipts of a checkpoint's entries are
// all signed at once, a burst that must not count as a standing queue.
const (
	QueueTarget   = 50 * time.Millisecond
	QueueInterval = time.Second
)

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
// requests queue for CPU. The bound in effect is the operator's limit, cut
// down while checks queue for CPU (QueueTarget). Tessera's own pushback (4,096 entries not yet
// integrated) comes far later: the CPU of signature checks and receipts
// runs out first.
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

	limit    int
	floor    int // the least the adaptive bound goes down to
	interval time.Duration
	metrics  *Metrics
	now      func() time.Time

	mu sync.Mutex // guards the fields below
	// inFlight is the entries admitted and not yet released.
	inFlight int
	// bound is the bound in effect, between floor and limit, adapted at
	// the end of each window (adapt).
	bound int
	// winStart is when the current window began; winMin is the least
	// delay Observed in it (-1: none), peak the most entries in flight.
	winStart time.Time
	winMin   time.Duration
	peak     int
	// shed counts the requests refused since lastLog, when the last
	// "shedding load" line was written.
	shed    int
	lastLog time.Time
}

// NewAdmission returns an Admission that admits at most limit entries at
// once (a request larger than the bound only when nothing else is in
// flight), less while requests queue for CPU (QueueTarget), and counts the
// requests it sheds in m (which may be nil).
// The bound in effect adapts over windows of QueueInterval, or of the
// checkpoint interval every if longer.
func NewAdmission(limit int, every time.Duration, m *Metrics) *Admission {
	return newAdmission(limit, max(QueueInterval, every), m, time.Now)
}

func newAdmission(limit int, interval time.Duration, m *Metrics, now func() time.Time) *Admission {
	limit = max(1, limit)
	return &Admission{cpu: make(chan struct{}, runtime.GOMAXPROCS(0)),
		limit: limit, floor: max(1, limit/4), interval: interval, metrics: m, now: now,
		bound: limit, winStart: now(), winMin: -1}
}

// Bound is the bound on entries in flight in effect now.
func (a *Admission) Bound() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adapt(a.now())
	return a.bound
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

// Observe reports that a request of n entries, admitted d ago, has had
// its statements checked: d is then mostly time spent queueing for CPU.
func (a *Admission) Observe(d time.Duration, n int) {
	if a == nil {
		return
	}
	// Statements are checked GOMAXPROCS at a time: a large batch takes
	// longer without any queue.
	d /= time.Duration(max(1, n/runtime.GOMAXPROCS(0)))
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adapt(a.now())
	if a.winMin < 0 || d < a.winMin {
		a.winMin = d
	}
}

// adapt ends the window if it is over: it cuts the bound if every request
// in it queued longer than QueueTarget, and lets it grow back if none
// did and the bound was nearly reached. Called with mu held.
func (a *Admission) adapt(now time.Time) {
	if now.Sub(a.winStart) < a.interval {
		return
	}
	switch {
	case a.winMin > QueueTarget:
		a.bound = max(a.floor, a.bound*4/5)
	case a.peak*10 >= a.bound*9:
		a.bound = min(a.limit, a.bound+max(1, a.limit/20))
	}
	a.winStart, a.winMin, a.peak = now, -1, a.inFlight
}

// Limit is the bound on entries in flight.
func (a *Admission) Limit() int { return a.limit }

// InFlight is the number of entries admitted and not yet released.
func (a *Admission) InFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

// Admit admits a request of n entries to log, or refuses it with
// ErrOverloaded in a problem.Retry if admitting it would put more than the
// limit in flight. The caller must call release once the request is
// answered; calling it again does nothing.
func (a *Admission) Admit(ctx context.Context, log string, n int) (release func(), err error) {
	if a == nil {
		return func() {}, nil
	}
	a.mu.Lock()
	now := a.now()
	a.adapt(now)
	if a.inFlight > 0 && a.inFlight+n > a.bound {
		inFlight := a.inFlight
		a.shed++
		bound := a.bound
		if now.Sub(a.lastLog) >= shedLogEvery {
			slog.Warn("shedding load: the server is at its bound on entries in flight; submissions get 503 with Retry-After",
				"in_flight", inFlight, "bound", bound, "max_in_flight", a.limit, "shed_requests", a.shed)
			a.shed, a.lastLog = 0, now
		}
		a.mu.Unlock()
		a.metrics.Shed(ctx, log)
		return nil, &problem.Retry{After: ShedRetryAfter, Err: fmt.Errorf(
			"%w: this server has %d entries in flight, at most %d now (-max-inflight %d, less while requests queue for CPU); this request of %d was refused before it was checked",
			problem.ErrOverloaded, inFlight, bound, a.limit, n)}
	}
	a.inFlight += n
	a.peak = max(a.peak, a.inFlight)
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.inFlight -= n
			a.mu.Unlock()
		})
	}, nil
}
