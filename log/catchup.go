package log

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/transparency-dev/tessera"
)

// catchUp gates a persistent antispam store after a start: its follower
// resumes from what it had stored, and until it has reached the tree the
// log had when it started, a duplicate could be logged again (the
// in-memory dedup of the previous run died with it, say after a crash).
// Until then every add and lookup is pushed back (a 503 with Retry-After);
// on a clean start the follower is already there.
type catchUp struct {
	inner tessera.Antispam
	// follower is set by Follower, which Tessera calls before any add.
	follower tessera.Follower
	// target is the integrated size at start; -1 until Open has read it.
	target atomic.Int64
	done   atomic.Bool
}

func newCatchUp(inner tessera.Antispam) *catchUp {
	c := &catchUp{inner: inner}
	c.target.Store(-1)
	return c
}

func (c *catchUp) Follower(b func([]byte) ([][]byte, error)) tessera.Follower {
	c.follower = c.inner.Follower(b)
	return c.follower
}

// start records the tree size the follower must reach.
func (c *catchUp) start(ctx context.Context, r tessera.LogReader) error {
	size, err := r.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("reading integrated size: %w", err)
	}
	c.target.Store(int64(size))
	return nil
}

// ready reports whether the follower has caught up, or why it cannot
// tell (the store did not answer).
func (c *catchUp) ready(ctx context.Context) (bool, error) {
	if c.done.Load() {
		return true, nil
	}
	t := c.target.Load()
	if t < 0 || c.follower == nil {
		return false, nil
	}
	n, err := c.follower.EntriesProcessed(ctx)
	if err != nil {
		return false, err
	}
	if n < uint64(t) {
		return false, nil
	}
	c.done.Store(true)
	return true, nil
}

func (c *catchUp) Decorator() func(tessera.AddFn) tessera.AddFn {
	inner := c.inner.Decorator()
	return func(add tessera.AddFn) tessera.AddFn {
		next := inner(add)
		return func(ctx context.Context, e *tessera.Entry) tessera.IndexFuture {
			switch ok, err := c.ready(ctx); {
			case err != nil:
				return func() (tessera.Index, error) {
					return tessera.Index{}, fmt.Errorf("dedup store did not answer (%v): %w", err, tessera.ErrPushback)
				}
			case !ok:
				return func() (tessera.Index, error) {
					return tessera.Index{}, fmt.Errorf("dedup store is catching up with the log after a restart: %w", tessera.ErrPushback)
				}
			}
			return next(ctx, e)
		}
	}
}
