package server

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// limiter holds one token bucket per agent with a rate (vetting.Rate),
// by key thumbprint. It counts statements, not requests, and only in this
// front end: N front ends behind a balancer let an agent log up to N times
// its rate (a shared count would cost a database round trip on every
// submission). Buckets outlive registry reloads; a rate changed in the
// registry applies to its bucket at the agent's next submission.
type limiter struct {
	mu sync.Mutex // guards buckets and pruned, and makes take all-or-nothing
	// buckets are the agents' token buckets, created full.
	buckets map[[32]byte]*rate.Limiter
	// pruned is the registry buckets was last pruned against: the buckets
	// of agents it no longer lists are dropped when it changes.
	pruned *vetting.Agents
}

func newLimiter() *limiter { return &limiter{buckets: map[[32]byte]*rate.Limiter{}} }

// take takes count[agent] statements from each agent's bucket at now, or
// nothing if any bucket is short: then it returns ErrRateLimited in a
// problem.Retry saying when the request would pass, or ErrTooLarge if an
// agent sent more statements than its burst, which never passes.
func (l *limiter) take(reg *vetting.Agents, count map[*vetting.Agent]int, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if reg != l.pruned {
		for tp := range l.buckets {
			if _, err := reg.Lookup(tp); err != nil {
				delete(l.buckets, tp)
			}
		}
		l.pruned = reg
	}
	agents := make([]*vetting.Agent, 0, len(count))
	for ag := range count {
		agents = append(agents, ag)
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].Name < agents[j].Name })

	var wait time.Duration
	var short *vetting.Agent
	take := make([]*rate.Limiter, len(agents))
	for i, ag := range agents {
		r := reg.RateOf(ag)
		if r == nil {
			delete(l.buckets, ag.Thumbprint) // unlimited now; full again if limited later
			continue
		}
		n := count[ag]
		if n > r.Burst {
			return fmt.Errorf("%w: %d statements from agent %q in one request; its rate (%s) takes at most %d at once", problem.ErrTooLarge, n, ag.Name, r, r.Burst)
		}
		b := l.buckets[ag.Thumbprint]
		switch {
		case b == nil:
			b = rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
			b.SetLimitAt(now, rate.Limit(r.PerSecond)) // start its clock now: full
			l.buckets[ag.Thumbprint] = b
		case b.Limit() != rate.Limit(r.PerSecond) || b.Burst() != r.Burst:
			b.SetLimitAt(now, rate.Limit(r.PerSecond))
			b.SetBurstAt(now, r.Burst)
		}
		if have := b.TokensAt(now); have < float64(n) {
			if w := time.Duration(math.Ceil((float64(n) - have) / r.PerSecond * float64(time.Second))); w > wait {
				wait, short = w, ag
			}
		}
		take[i] = b
	}
	if short != nil {
		r := reg.RateOf(short)
		return &problem.Retry{After: wait, Err: fmt.Errorf("%w: agent %q may log %s; retry in %s (this request has %d statements from it, each counts)",
			problem.ErrRateLimited, short.Name, r, wait.Round(time.Millisecond), count[short])}
	}
	for i, b := range take {
		if b != nil {
			// Cannot fail: every bucket was checked under l.mu, which
			// every taker holds.
			b.AllowN(now, count[agents[i]])
		}
	}
	return nil
}
