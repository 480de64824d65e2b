package log

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
)

// awaiter holds submissions until a published checkpoint covers them. It
// takes the place of Tessera's PublicationAwaiter, which a profile at 1,500
// submissions/s showed costing CPU and latency: it wakes every waiting
// request on every poll (20 times a second, all through one mutex), and
// notices a new checkpoint on average half a poll late. Here a waiter wakes
// only when the published size grows, and the log's checkpoint signer asks
// for a prompt read (kick): the checkpoint it has just signed is about to
// be written.
type awaiter struct {
	read func(context.Context) ([]byte, error)
	poll time.Duration // between reads when nothing is expected
	kick chan struct{}
	done chan struct{} // closed when run returns

	mu    sync.Mutex
	size  uint64
	cp    []byte
	err   error         // set once, when the log stops
	grown chan struct{} // closed, and replaced, when size grows or err is set
}

// After a kick, reads follow each other this fast at first, then twice as
// slowly each time until they are poll apart: a posix checkpoint is written
// within a millisecond or two of its signature, a remote or cosigned one
// later, and the backoff bounds the reads an object store pays for.
const kickFirstRead = time.Millisecond

// newAwaiter returns an awaiter that reads with read once run starts.
func newAwaiter(poll time.Duration) *awaiter {
	return &awaiter{
		poll:  poll,
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		grown: make(chan struct{}),
	}
}

// signed is called after each checkpoint signature. It never blocks.
func (a *awaiter) signed() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// run reads the published checkpoint until ctx ends, then releases every
// waiter with ctx's error. Log.Open starts it and Log.Close stops it.
func (a *awaiter) run(ctx context.Context) {
	defer close(a.done)
	t := time.NewTimer(a.poll)
	defer t.Stop()
	var (
		fast    time.Duration // the next delay after a kick; 0 when not in one
		failing bool
	)
	for {
		select {
		case <-ctx.Done():
			a.mu.Lock()
			a.err = ctx.Err()
			close(a.grown)
			a.mu.Unlock()
			return
		case <-a.kick:
			fast = kickFirstRead
		case <-t.C:
		}
		grew, err := a.update(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Waiters keep waiting, each until its own deadline.
			slog.Warn("reading the published checkpoint", "err", err)
			failing = true
		case err == nil:
			failing = false
		}
		next := a.poll
		if grew {
			fast = 0
		} else if fast > 0 && fast < a.poll {
			next, fast = fast, 2*fast
		} else {
			fast = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// update reads the published checkpoint, keeps it if it changed, and
// wakes the waiters if the tree grew.
func (a *awaiter) update(ctx context.Context) (bool, error) {
	cp, err := a.read(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // not published yet
	}
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	same := bytes.Equal(cp, a.cp)
	a.mu.Unlock()
	if same {
		return false, nil
	}
	size, err := CheckpointSize(cp)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if size < a.size {
		return false, nil // a log never shrinks: not a checkpoint to release waiters with
	}
	a.cp = cp
	if size == a.size {
		return false, nil // cosigned again, or republished
	}
	a.size = size
	close(a.grown)
	a.grown = make(chan struct{})
	return true, nil
}

// await waits for f's index, then until a published checkpoint covers it,
// and returns the index and that checkpoint.
func (a *awaiter) await(ctx context.Context, f tessera.IndexFuture) (tessera.Index, []byte, error) {
	i, err := f()
	if err != nil {
		return i, nil, err
	}
	for {
		a.mu.Lock()
		size, cp, err, grown := a.size, a.cp, a.err, a.grown
		a.mu.Unlock()
		switch {
		case size > i.Index:
			return i, cp, nil
		case err != nil:
			return i, nil, err
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return i, nil, ctx.Err()
		}
	}
}

// kickSigner is the log's checkpoint signer, which tells the awaiter that
// a checkpoint is about to be published.
type kickSigner struct {
	note.Signer
	signed func()
}

func (s kickSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.Signer.Sign(msg)
	if err == nil {
		s.signed()
	}
	return sig, err
}
