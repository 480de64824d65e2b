package log

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
)

// fakePublished is a published checkpoint that a test changes.
type fakePublished struct {
	mu    sync.Mutex
	cp    []byte
	err   error
	reads int
}

func (f *fakePublished) read(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	if f.cp == nil {
		return nil, os.ErrNotExist
	}
	return f.cp, nil
}

func (f *fakePublished) publish(size uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	if err == nil {
		f.cp = append(fmtlog.Checkpoint{Origin: "example.test/log", Size: size, Hash: make([]byte, 32)}.Marshal(),
			"\n— example.test/log AAAAAA==\n"...)
	}
}

// startAwaiter runs an awaiter over f that reads only when kicked: its
// regular poll is an hour.
func startAwaiter(t *testing.T, f *fakePublished) (*awaiter, context.CancelFunc) {
	t.Helper()
	a := newAwaiter(time.Hour)
	a.read = f.read
	ctx, cancel := context.WithCancel(context.Background())
	go a.run(ctx)
	t.Cleanup(func() { cancel(); <-a.done })
	return a, cancel
}

type awaited struct {
	size uint64
	err  error
}

// wait starts awaiting index and returns where the answer will arrive.
func wait(ctx context.Context, a *awaiter, index uint64) <-chan awaited {
	c := make(chan awaited, 1)
	go func() {
		_, cp, err := a.await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: index}, nil })
		var size uint64
		if err == nil {
			size, err = CheckpointSize(cp)
		}
		c <- awaited{size, err}
	}()
	return c
}

func released(t *testing.T, c <-chan awaited) awaited {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter was not released")
		return awaited{}
	}
}

func stillWaiting(t *testing.T, c <-chan awaited) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("a waiter was released early: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

// A waiter is released by the first checkpoint that covers its index,
// found promptly after the log signs it even though the regular poll is
// an hour away, and even when the checkpoint is written a little later.
func TestAwaiterReleasesWhenCovered(t *testing.T) {
	f := &fakePublished{}
	a, _ := startAwaiter(t, f)
	ctx := context.Background()
	w2, w5 := wait(ctx, a, 2), wait(ctx, a, 5)
	stillWaiting(t, w2)

	f.publish(3, nil)
	a.signed()
	if r := released(t, w2); r.err != nil || r.size != 3 {
		t.Fatalf("index 2: got %+v, want the checkpoint of size 3", r)
	}
	stillWaiting(t, w5)

	// Signed now, written 30 ms later: the backed-off reads find it.
	a.signed()
	time.Sleep(30 * time.Millisecond)
	f.publish(6, nil)
	if r := released(t, w5); r.err != nil || r.size != 6 {
		t.Fatalf("index 5: got %+v, want the checkpoint of size 6", r)
	}
	// An index already covered returns at once.
	if r := released(t, wait(ctx, a, 0)); r.err != nil || r.size != 6 {
		t.Fatalf("index 0: got %+v", r)
	}
}

// A failing read leaves waiters waiting (each until its own deadline),
// and a waiter whose context ends is answered at once.
func TestAwaiterReadErrors(t *testing.T) {
	f := &fakePublished{}
	a, _ := startAwaiter(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	w1, w2 := wait(context.Background(), a, 1), wait(ctx, a, 1)
	f.publish(0, errors.New("disk on fire"))
	a.signed()
	stillWaiting(t, w1)
	cancel()
	if r := released(t, w2); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("a cancelled waiter got %+v, want context.Canceled", r)
	}
	f.publish(2, nil)
	a.signed()
	if r := released(t, w1); r.err != nil || r.size != 2 {
		t.Fatalf("after the read recovered: got %+v", r)
	}
}

// Stopping the awaiter answers every waiter with the reason.
func TestAwaiterStops(t *testing.T) {
	f := &fakePublished{}
	a, stop := startAwaiter(t, f)
	w := wait(context.Background(), a, 7)
	stillWaiting(t, w)
	stop()
	if r := released(t, w); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("got %+v, want context.Canceled", r)
	}
	<-a.done
	if r := released(t, wait(context.Background(), a, 7)); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("after the stop: got %+v, want context.Canceled", r)
	}
}

// A kick reads a few times with backoff, not forever: the reads an
// object store is paid for stay bounded when no checkpoint comes.
func TestAwaiterKickIsBounded(t *testing.T) {
	f := &fakePublished{}
	a := newAwaiter(40 * time.Millisecond)
	a.read = f.read
	ctx, cancel := context.WithCancel(context.Background())
	go a.run(ctx)
	defer func() { cancel(); <-a.done }()
	a.signed()
	time.Sleep(400 * time.Millisecond)
	f.mu.Lock()
	n := f.reads
	f.mu.Unlock()
	// Backoff 1, 2, 4, 8, 16, 32 ms, then every 40 ms: about 6 + 9 reads
	// in 400 ms. Reading every millisecond would be hundreds.
	if n > 30 {
		t.Fatalf("%d reads in 400 ms after one kick, want at most 30", n)
	}
	if n < 5 {
		t.Fatalf("%d reads in 400 ms, want the kick's reads and the polls", n)
	}
}
