package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// TestRateLimits: each statement counts against its agent's rate, the
// registry's default or the agent's own; an agent over it gets
// ErrRateLimited with the wait, and nothing is appended, while other
// agents go on; a registry change applies at the next submission; and no
// rate means no limit.
func TestRateLimits(t *testing.T) {
	h := newHarness(t)
	reg := h.agents
	var mu sync.Mutex // guards reg and now, which the service reads
	now := h.now
	reg, _ = reg.SetRate("", &vetting.Rate{PerSecond: 2, Burst: 3})
	s := New(Config{Log: h.log, Receipts: h.rs,
		Agents: func() *vetting.Agents { mu.Lock(); defer mu.Unlock(); return reg },
		Now:    func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	set := func(f func()) { mu.Lock(); defer mu.Unlock(); f() }
	ctx := context.Background()
	d := byte(0)
	stmts := func(agent string, n int) []string {
		out := make([]string, n)
		for i := range out {
			d++
			k := h.es
			if agent == "ed" {
				k = h.ed
			}
			out[i] = h.statement(k, d, "", h.now)
		}
		return out
	}
	submit := func(want error, sts ...string) error {
		t.Helper()
		before := h.size()
		_, err := s.Submit(ctx, sts)
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Fatalf("Submit of %d: %v, want %v", len(sts), err, want)
		}
		if err != nil {
			time.Sleep(150 * time.Millisecond) // a checkpoint interval
			if after := h.size(); after != before {
				t.Fatalf("refused request changed the log: %d to %d", before, after)
			}
		}
		return err
	}

	// The default, 2/s with a burst of 3: a batch of 3 takes it all.
	submit(nil, stmts("es", 3)...)
	err := submit(problem.ErrRateLimited, stmts("es", 1)...)
	if p := problem.For(err); p.Status != 429 || p.RetryAfter != 1 || !strings.Contains(p.Detail, `agent "es-agent" may log 2/s, burst 3`) {
		t.Fatalf("over the limit: %+v", p)
	}
	// Another agent has its own bucket; a batch mixing both is refused whole.
	submit(nil, stmts("ed", 1)...)
	submit(problem.ErrRateLimited, append(stmts("ed", 1), stmts("es", 1)...)...)
	// The refused batch took nothing from ed's bucket: 2 left.
	submit(nil, stmts("ed", 2)...)
	submit(problem.ErrRateLimited, stmts("ed", 1)...)

	// Half a second later es has one statement back, not two.
	set(func() { now = now.Add(500 * time.Millisecond) })
	err = submit(problem.ErrRateLimited, stmts("es", 2)...)
	if r := (*problem.Retry)(nil); !errors.As(err, &r) || r.After != 500*time.Millisecond {
		t.Fatalf("wait for the second statement: %v, want 500ms", err)
	}
	submit(nil, stmts("es", 1)...)

	// The operator gives es a rate of its own. It applies at once: the
	// bucket keeps its level (a change grants no free burst) and refills
	// at the new rate, 10 statements in 100 ms where the old gave 0.2.
	set(func() { reg, _ = reg.SetRate("es-agent", &vetting.Rate{PerSecond: 100, Burst: 10}) })
	submit(problem.ErrRateLimited, stmts("es", 1)...)
	set(func() { now = now.Add(100 * time.Millisecond) })
	submit(nil, stmts("es", 10)...)
	submit(problem.ErrRateLimited, stmts("es", 1)...)
	// A batch larger than the burst would never pass: 413, not 429.
	err = submit(problem.ErrTooLarge, stmts("es", 11)...)
	if !strings.Contains(err.Error(), "at most 10 at once") {
		t.Fatalf("batch over the burst: %v", err)
	}
	// No default and no rate of its own: unlimited.
	set(func() { reg, _ = reg.SetRate("", nil) })
	submit(nil, stmts("ed", 50)...)
	submit(nil, stmts("ed", 50)...)
	// A limit set again starts full.
	set(func() { reg, _ = reg.SetRate("", &vetting.Rate{PerSecond: 1, Burst: 5}) })
	submit(nil, stmts("ed", 5)...)
	submit(problem.ErrRateLimited, stmts("ed", 1)...)
}

// BenchmarkLimiterTake is the cost rate limits add to a submission of one
// statement by a limited agent: one lock, one bucket.
func BenchmarkLimiterTake(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	reg, _ := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: k.Public()}, "")
	reg, _ = reg.SetRate("", &vetting.Rate{PerSecond: 1e6, Burst: 1_000_000})
	ag := reg.List()[0]
	l := newLimiter()
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.take(reg, map[*vetting.Agent]int{ag: 1}, now.Add(time.Duration(i)*time.Microsecond)); err != nil {
			b.Fatal(err)
		}
	}
}
