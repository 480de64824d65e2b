package log

import (
	"context"
	"errors"
	"fmt"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"

	"github.com/vesperlog/vesperlog/log/problem"
)

// recentSize bounds the in-memory half of dedup. It need only cover the
// persistent follower's lag (a few seconds of submissions).
const recentSize = 1 << 16

// errNotLogged ends a lookup-only call of the persistent antispam decorator.
var errNotLogged = errors.New("not logged")

// dedup is a tessera.Antispam whose identity is chosen by the log's format,
// where Tessera's is the hash of the whole entry. A vetting leaf carries a
// timestamp and a signature, so two submissions of one digest differ in
// bytes but are the same entry.
//
// It stores nothing itself: the persistent store is Tessera's own antispam
// (fed by its follower, with our identities), probed through its decorator
// with an entry whose data is the identity; the in-memory half covers the
// entries the follower has not reached yet.
type dedup struct {
	inner    tessera.Antispam
	identity func([]byte) ([]byte, error)
	// probe is inner's decorator around a delegate that never adds: it
	// answers IsDup for a known identity and errNotLogged otherwise.
	probe tessera.AddFn

	// mu guards the check-then-insert on recent, so that concurrent
	// submissions of one identity add it once.
	mu     sync.Mutex
	recent *lru.Cache[string, *pending]
}

// pending is one identity's first add; done closes when its index is known.
type pending struct {
	done chan struct{}
	idx  tessera.Index
	err  error
}

func newDedup(inner tessera.Antispam, identity func([]byte) ([]byte, error)) *dedup {
	recent, err := lru.New[string, *pending](recentSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	d := &dedup{inner: inner, identity: identity, recent: recent}
	d.probe = probeOnly(inner)
	return d
}

// Follower feeds the persistent store with our identities; Tessera's default
// bundle hasher is not used.
func (d *dedup) Follower(func([]byte) ([][]byte, error)) tessera.Follower {
	return d.inner.Follower(d.bundleIdentities)
}

func (d *dedup) bundleIdentities(bundle []byte) ([][]byte, error) {
	entries, err := splitTlogBundle(bundle)
	if err != nil {
		return nil, err
	}
	ids := make([][]byte, len(entries))
	for i, e := range entries {
		id, err := d.identity(e)
		if err != nil {
			// Only entries with an identity are ever added; one without
			// is stored under its own hash rather than stall the follower.
			id = e
		}
		ids[i] = tessera.NewEntry(id).Identity()
	}
	return ids, nil
}

func splitTlogBundle(bundle []byte) ([][]byte, error) {
	var b api.EntryBundle
	if err := b.UnmarshalText(bundle); err != nil {
		return nil, fmt.Errorf("parsing entry bundle: %w", err)
	}
	return b.Entries, nil
}

// Decorator returns the dedup step of the appender.
func (d *dedup) Decorator() func(tessera.AddFn) tessera.AddFn {
	return func(add tessera.AddFn) tessera.AddFn {
		return func(ctx context.Context, e *tessera.Entry) tessera.IndexFuture {
			id, err := d.identity(e.Data())
			if err != nil {
				return func() (tessera.Index, error) {
					return tessera.Index{}, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
				}
			}
			key := string(id)
			d.mu.Lock()
			if p, ok := d.recent.Get(key); ok {
				d.mu.Unlock()
				// The first add's caller resolves its future (Await
				// always does), which closes done.
				return func() (tessera.Index, error) {
					<-p.done
					return tessera.Index{Index: p.idx.Index, IsDup: true}, p.err
				}
			}
			p := &pending{done: make(chan struct{})}
			d.recent.Add(key, p)
			d.mu.Unlock()

			idx, err := d.probe(ctx, tessera.NewEntry(id))()
			switch {
			case err == nil:
				p.idx = idx
				close(p.done)
				return func() (tessera.Index, error) { return idx, nil }
			case !errors.Is(err, errNotLogged):
				d.fail(key, p, err)
				return func() (tessera.Index, error) { return tessera.Index{}, err }
			}
			future := add(ctx, e)
			resolve := sync.OnceFunc(func() {
				idx, err := future()
				if err != nil {
					d.fail(key, p, err)
					return
				}
				p.idx = idx
				close(p.done)
			})
			return func() (tessera.Index, error) {
				resolve()
				return p.idx, p.err
			}
		}
	}
}

// fail releases waiters on p and forgets it, so that a retry (after
// pushback, say) adds afresh.
func (d *dedup) fail(key string, p *pending, err error) {
	p.err = err
	d.mu.Lock()
	if cur, ok := d.recent.Peek(key); ok && cur == p {
		d.recent.Remove(key)
	}
	d.mu.Unlock()
	close(p.done)
}

// lookup returns the index of identity's entry, if logged.
func (d *dedup) lookup(ctx context.Context, identity []byte) (uint64, bool, error) {
	d.mu.Lock()
	p, ok := d.recent.Get(string(identity))
	d.mu.Unlock()
	if ok {
		select {
		case <-p.done:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		if p.err == nil {
			return p.idx.Index, true, nil
		}
	}
	return lookup(ctx, d.probe, identity)
}
