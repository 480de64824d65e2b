package log

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
)

func mustAdmit(t *testing.T, a *Admission, n int) func() {
	t.Helper()
	release, err := a.Admit(context.Background(), "vetting", n)
	if err != nil {
		t.Fatalf("Admit(%d) with %d in flight of %d: %v", n, a.InFlight(), a.Limit(), err)
	}
	return release
}

func mustShed(t *testing.T, a *Admission, n int) {
	t.Helper()
	release, err := a.Admit(context.Background(), "vetting", n)
	if err == nil {
		release()
		t.Fatalf("Admit(%d) with %d in flight of %d: admitted; want shed", n, a.InFlight(), a.Limit())
	}
	var r *problem.Retry
	if !errors.Is(err, problem.ErrOverloaded) || !errors.As(err, &r) || r.After != ShedRetryAfter {
		t.Fatalf("Admit: %v; want ErrOverloaded in a Retry of %s", err, ShedRetryAfter)
	}
	if p := problem.For(err); p.Status != 503 || p.RetryAfter != 1 {
		t.Fatalf("Admit's error is a %d with Retry-After %d; want 503 with 1", p.Status, p.RetryAfter)
	}
}

// TestAdmissionBound: a request counts its entries plus RequestCost; past the
// bound requests are shed; released entries make room again, once each.
func TestAdmissionBound(t *testing.T) {
	a := NewAdmission(6+2*RequestCost, nil)
	r1 := mustAdmit(t, a, 4) // 4 + RequestCost
	r2 := mustAdmit(t, a, 2)
	mustShed(t, a, 1)
	r1()
	r1() // a second release frees nothing more
	if got := a.InFlight(); got != 2+RequestCost {
		t.Fatalf("in flight after release: %d; want %d", got, 2+RequestCost)
	}
	mustShed(t, a, 5)
	r3 := mustAdmit(t, a, 4)
	r2()
	r3()
	// A request over the whole bound passes alone, never beside others.
	r4 := mustAdmit(t, a, 25+2*RequestCost)
	mustShed(t, a, 1)
	r4()
	if got := a.InFlight(); got != 0 {
		t.Fatalf("in flight at the end: %d; want 0", got)
	}
	// A nil Admission admits everything.
	var none *Admission
	release, err := none.Admit(context.Background(), "vetting", 1e6)
	if err != nil {
		t.Fatal(err)
	}
	release()
}

// TestAdmissionConcurrent: under -race, concurrent admits and releases
// never let more than the bound in flight, and all of it is released.
func TestAdmissionConcurrent(t *testing.T) {
	a := NewAdmission(50, nil)
	var mu sync.Mutex // guards peak
	peak := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				release, err := a.Admit(context.Background(), "vetting", 3)
				if err != nil {
					continue
				}
				mu.Lock()
				peak = max(peak, a.InFlight())
				mu.Unlock()
				release()
			}
		}()
	}
	wg.Wait()
	if peak > 50 || peak == 0 || a.InFlight() != 0 {
		t.Fatalf("peak in flight %d, %d left; want 1..50, 0", peak, a.InFlight())
	}
}

// TestAdmissionDo: at most GOMAXPROCS pieces of work run at once; the
// rest wait, and all run.
func TestAdmissionDo(t *testing.T) {
	a := NewAdmission(10, nil)
	var mu sync.Mutex // guards running, peak, ran
	running, peak, ran := 0, 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Do(func() {
				mu.Lock()
				running++
				peak = max(peak, running)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				running--
				ran++
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	if procs := runtime.GOMAXPROCS(0); peak > procs || peak == 0 || ran != 50 {
		t.Fatalf("peak %d at once (GOMAXPROCS %d), %d of 50 ran", peak, procs, ran)
	}
	var none *Admission
	done := false
	none.Do(func() { done = true })
	if !done {
		t.Fatal("a nil Admission did not run f")
	}
}
