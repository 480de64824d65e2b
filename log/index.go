package log

import (
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/tessera"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Index maps a key derived from each entry (a CT leaf hash, say) to the
// entry's index. It is a Tessera antispam store used only for lookups: a
// follower fills it from the published bundles, so it lags the log by a
// few seconds, and never by more than the store's pushback threshold.
type Index struct {
	// probe answers IsDup for a known key and errNotLogged otherwise.
	probe tessera.AddFn
}

// NewIndex starts filling store with keys(entry) for every entry of the
// log. A key is stored as Tessera hashes identities (SHA-256), so any
// length will do.
func (l *Log) NewIndex(store tessera.Antispam, keys func(entry []byte) ([]byte, error)) *Index {
	f := store.Follower(func(bundle []byte) ([][]byte, error) {
		entries, err := l.format.split(bundle)
		if err != nil {
			return nil, err
		}
		ids := make([][]byte, len(entries))
		for i, e := range entries {
			k, err := keys(e)
			if err != nil {
				return nil, fmt.Errorf("entry %d of bundle: %w", i, err)
			}
			ids[i] = tessera.NewEntry(k).Identity()
		}
		return ids, nil
	})
	go f.Follow(l.bg, l.reader)
	return &Index{probe: probeOnly(store)}
}

// Lookup returns the index of the entry with the given key, if the index
// has reached it.
func (x *Index) Lookup(ctx context.Context, key []byte) (uint64, bool, error) {
	return lookup(ctx, x.probe, key)
}

// probeOnly wraps store's decorator around a delegate that never adds.
func probeOnly(store tessera.Antispam) tessera.AddFn {
	return store.Decorator()(func(context.Context, *tessera.Entry) tessera.IndexFuture {
		return func() (tessera.Index, error) { return tessera.Index{}, errNotLogged }
	})
}

func lookup(ctx context.Context, probe tessera.AddFn, key []byte) (uint64, bool, error) {
	idx, err := probe(ctx, tessera.NewEntry(key))()
	switch {
	case errors.Is(err, errNotLogged):
		return 0, false, nil
	case errors.Is(err, tessera.ErrPushback):
		return 0, false, fmt.Errorf("%w: %v", problem.ErrOverloaded, err)
	case err != nil:
		return 0, false, fmt.Errorf("index lookup: %w", err)
	}
	return idx.Index, true, nil
}
