package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"

	"github.com/vesperlog/vesperlog/log/problem"
)

// recentSize bounds the in-memory half of dedup. It need only cover the
// persistent follower's lag (a few seconds of submissions).
// The persistent store must push back before its unindexed gap outgrows
// it (storage/antispam.DefaultPushback is half of it).
const recentSize = 1 << 16

// tesseraRecentSize bounds Tessera's own in-memory dedup, which sits in
// front of ours. Ours covers the same entries (keyed by our identity, which
// equal bytes share), so Tessera's need not be large; at its default
// (262,144) it keeps every cached entry's request context, leaf and
// futures alive, hundreds of MiB that grow with the log up to that size.
const tesseraRecentSize = 1 << 10

// errNotLogged ends a lookup-only call of the persistent antispam decorator.
var errNotLogged = errors.New("not logged")

// dedup is a tessera.Antispam whose identity is chosen by the log's format,
// where Tessera's is the hash of the whole entry. A vetting leaf carries a
// timestamp and a signature, so two submissions of one digest differ in
// bytes but are the same entry.
//
// It stores nothing itself: the persistent store is Tessera's own antispam
// (fed by its follower, with our identities), probed through its decorator
// with an entry whose identity is ours; the in-memory half covers the
// entries the follower has not reached yet in this process, and claims
// (where several processes share the log) those of the other processes.
type dedup struct {
	inner tessera.Antispam
	// key returns the entry whose Identity the stores keep for e, or an
	// error for an entry not of the log's format.
	key func(e *tessera.Entry) (*tessera.Entry, error)
	// bundleIDs lists a bundle's identities for the follower; nil means
	// Tessera's own (a CT log's, which key agrees with).
	bundleIDs func(bundle []byte) ([][]byte, error)
	// claims, if set, makes dedup exact across processes.
	claims Claims
	// probe is inner's decorator around a delegate that never adds: it
	// answers IsDup for a known identity and errNotLogged otherwise.
	probe tessera.AddFn

	// mu guards the check-then-insert on recent, so that concurrent
	// submissions of one identity add it once.
	mu     sync.Mutex
	recent *lru.Cache[string, *pending]
}

// Claims is storage.Claims, declared here so that log needs no storage
// driver: an identity is claimed before its entry is added, so that
// another process sharing the log waits for its index instead of adding it
// again.
type Claims interface {
	Claim(ctx context.Context, id []byte) (idx uint64, logged bool, err error)
	Settle(ctx context.Context, id []byte, idx uint64) error
	Release(ctx context.Context, id []byte) error
	Forget(ctx context.Context, n uint64) error
}

// pending is one identity's first add; done closes when its index is known.
type pending struct {
	done chan struct{}
	idx  tessera.Index
	err  error
}

func newDedup(inner tessera.Antispam, claims Claims) *dedup {
	recent, err := lru.New[string, *pending](recentSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &dedup{
		inner:  inner,
		key:    func(e *tessera.Entry) (*tessera.Entry, error) { return e, nil },
		claims: claims,
		probe:  probeOnly(inner),
		recent: recent,
	}
}

// byIdentity makes d dedup a tlog-tiles log by identity(entry data).
func (d *dedup) byIdentity(identity func([]byte) ([]byte, error)) {
	d.key = func(e *tessera.Entry) (*tessera.Entry, error) {
		id, err := identity(e.Data())
		if err != nil {
			return nil, err
		}
		return tessera.NewEntry(id), nil
	}
	d.bundleIDs = func(bundle []byte) ([][]byte, error) {
		entries, err := splitTlogBundle(bundle)
		if err != nil {
			return nil, err
		}
		ids := make([][]byte, len(entries))
		for i, e := range entries {
			id, err := identity(e)
			if err != nil {
				// Only entries with an identity are ever added; one without
				// is stored under its own hash rather than stall the follower.
				id = e
			}
			ids[i] = tessera.NewEntry(id).Identity()
		}
		return ids, nil
	}
}

// Follower feeds the persistent store with our identities.
func (d *dedup) Follower(tesseras func([]byte) ([][]byte, error)) tessera.Follower {
	if d.bundleIDs == nil {
		return d.inner.Follower(tesseras)
	}
	return d.inner.Follower(d.bundleIDs)
}

func splitTlogBundle(bundle []byte) ([][]byte, error) {
	var b api.EntryBundle
	if err := b.UnmarshalText(bundle); err != nil {
		return nil, fmt.Errorf("parsing entry bundle: %w", err)
	}
	return b.Entries, nil
}

// Decorator returns the dedup step of the appender. The order matters
// across processes: the claim comes before the persistent probe, so an
// identity that Forget dropped from the claims is in the persistent store
// by the time the probe looks.
func (d *dedup) Decorator() func(tessera.AddFn) tessera.AddFn {
	return func(add tessera.AddFn) tessera.AddFn {
		return func(ctx context.Context, e *tessera.Entry) tessera.IndexFuture {
			k, err := d.key(e)
			if err != nil {
				return func() (tessera.Index, error) {
					return tessera.Index{}, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
				}
			}
			id := k.Identity()
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

			if d.claims != nil {
				i, logged, err := d.claims.Claim(ctx, id)
				if err != nil {
					d.fail(key, p, err)
					return func() (tessera.Index, error) { return tessera.Index{}, err }
				}
				if logged {
					return d.found(p, tessera.Index{Index: i, IsDup: true})
				}
			}
			idx, err := d.probe(ctx, k)()
			switch {
			case err == nil:
				d.settle(ctx, id, idx.Index)
				return d.found(p, idx)
			case !errors.Is(err, errNotLogged):
				d.release(ctx, id)
				d.fail(key, p, err)
				return func() (tessera.Index, error) { return tessera.Index{}, err }
			}
			future := add(ctx, e)
			resolve := sync.OnceFunc(func() {
				idx, err := future()
				if err != nil {
					d.release(context.WithoutCancel(ctx), id)
					d.fail(key, p, err)
					return
				}
				d.settle(context.WithoutCancel(ctx), id, idx.Index)
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

// found resolves p with a logged entry's index.
func (d *dedup) found(p *pending, idx tessera.Index) tessera.IndexFuture {
	p.idx = idx
	close(p.done)
	return func() (tessera.Index, error) { return idx, nil }
}

// settle records a claimed identity's index. If it fails, the claim goes
// stale and another process may log the entry again: a duplicate, never
// a lost entry.
func (d *dedup) settle(ctx context.Context, id []byte, idx uint64) {
	if d.claims == nil {
		return
	}
	if err := d.claims.Settle(ctx, id, idx); err != nil {
		slog.Warn("dedup claim not settled", "index", idx, "err", err)
	}
}

func (d *dedup) release(ctx context.Context, id []byte) {
	if d.claims == nil {
		return
	}
	if err := d.claims.Release(ctx, id); err != nil {
		slog.Warn("dedup claim not released", "err", err)
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

// lookup returns the index of the entry with the given identity (before
// hashing), if logged.
func (d *dedup) lookup(ctx context.Context, identity []byte) (uint64, bool, error) {
	k := tessera.NewEntry(identity)
	d.mu.Lock()
	p, ok := d.recent.Get(string(k.Identity()))
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
