package antispam

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/storage/keys"
)

// nextKey holds the number of entries the follower has indexed (as in
// Tessera's store, whose directories open here).
var nextKey = []byte("@nextIdx")

// Defaults for Options.
const (
	// DefaultBatch identities per follower transaction: at 8 MiB
	// memtables a Badger transaction may hold about 15,000 of them
	// (15% of the memtable), and fewer, larger commits let the
	// follower keep up with thousands of entries a second.
	DefaultBatch = 4096
	// DefaultPushback is the unindexed gap past which adds are refused.
	// It must stay below the caller's in-memory dedup (log/dedup.go keeps
	// the last 65,536 identities), which covers the gap.
	DefaultPushback = 1 << 15
	// DefaultPoll is how long the follower sleeps when it has caught up.
	DefaultPoll = 100 * time.Millisecond
)

// Options tunes a Store; the zero value takes the defaults.
type Options struct {
	// Batch is the most identities written per follower transaction.
	Batch int
	// Pushback: while more entries than this are unindexed, every add
	// fails with tessera.ErrPushbackAntispam.
	Pushback uint64
	// Poll is the follower's sleep when it has caught up with the log.
	Poll time.Duration
}

// Store is a tessera.Antispam on Badger.
type Store struct {
	opts Options
	db   *badger.DB

	// closing guards db against Close: every use holds it for reading,
	// Close for writing, so that Badger is never used after it closed.
	closing sync.RWMutex
	closed  bool // guarded by closing

	// next mirrors nextKey as last committed.
	next atomic.Uint64
	// pushback is set by the follower while the unindexed gap exceeds
	// opts.Pushback.
	pushback atomic.Bool
	// following is held by the one running follower: Tessera starts one
	// per store, but two would interleave their progress.
	following sync.Mutex
}

// badgerOptions bound Badger's memory: two 8 MiB memtables (each backed by
// an arena of its size and a write-ahead log of twice it), a 16 MiB block
// cache and a 16 MiB cache for table indexes and bloom filters, which
// Badger otherwise keeps in memory for every table (growing with the
// data). Identities are random hashes, so compression would only cost
// CPU. Only the follower writes, so conflict detection is off.
func badgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(16 << 20).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		// As strict as Tessera's store or stricter: a follower commit
		// (identities and progress in one transaction) is on disk before
		// the follower moves on.
		WithSyncWrites(true).
		WithLogger(badgerLogger{slog.Default().With("lib", "badger")})
}

// badgerLogger logs Badger's messages through slog, each as one record
// (some span lines, such as the level summary Close prints), its info
// chatter (table replays, compactions) at debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.log(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) {
	b.log(slog.LevelWarn, f, a)
}
func (b badgerLogger) Infof(f string, a ...any)  { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any) { b.log(slog.LevelDebug, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	if b.l.Enabled(context.Background(), level) {
		b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(f, a...)))
	}
}

// Open opens (or creates) the store in dir. Its owner closes it, after
// the log it serves: Tessera's Shutdown waits for the follower to index
// the last entries, so closing it at a signal would stall that wait.
func Open(dir string, o Options) (*Store, error) {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Pushback == 0 {
		o.Pushback = DefaultPushback
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	db, err := badger.Open(badgerOptions(dir))
	if err != nil && lostTable(err) {
		// Badger v4.9.1 records a flushed memtable's table in its
		// manifest without syncing the directory that holds the new
		// file, so a power cut can lose the file and Badger then refuses
		// to open. The store is derived from the log: start it afresh,
		// and the follower indexes the whole log again while log/catchup.go
		// pushes back adds.
		slog.Error("the antispam store lost a table in a power cut; rebuilding it from the log", "dir", dir, "err", err)
		if err := clearStore(dir); err != nil {
			return nil, err
		}
		db, err = badger.Open(badgerOptions(dir))
	}
	if err != nil {
		return nil, fmt.Errorf("opening badger in %s: %w", dir, err)
	}
	s := &Store{opts: o, db: db}
	n, err := s.readNext()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.next.Store(n)
	return s, nil
}

// Close closes Badger; the follower stops and lookups fail after it.
func (s *Store) Close() error {
	s.closing.Lock()
	defer s.closing.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// lostTable reports Badger's refusal of a manifest that names a missing
// table file (levels.go revertToManifest; the error has no sentinel).
func lostTable(err error) bool {
	return strings.Contains(err.Error(), "file does not exist for table")
}

// clearStore removes every file of the Badger store in dir, durably.
func clearStore(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, de := range des {
		if err := keys.Remove(filepath.Join(dir, de.Name())); err != nil {
			return fmt.Errorf("clearing the antispam store: %w", err)
		}
	}
	return nil
}

// errClosed answers what comes after Close, which happens as the server
// shuts down: a pushback (503 with Retry-After), not an internal error.
var errClosed = fmt.Errorf("antispam store is closed: %w", tessera.ErrPushback)

// use runs f on the open db.
func (s *Store) use(f func(db *badger.DB) error) error {
	s.closing.RLock()
	defer s.closing.RUnlock()
	if s.closed {
		return errClosed
	}
	return f(s.db)
}

func (s *Store) readNext() (uint64, error) {
	var n uint64
	err := s.db.View(func(txn *badger.Txn) (err error) {
		n, _, err = getUint64(txn, nextKey)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading antispam follower progress: %w", err)
	}
	return n, nil
}

// Lookup returns the index stored for an identity, if any.
func (s *Store) Lookup(id []byte) (idx uint64, ok bool, err error) {
	err = s.use(func(db *badger.DB) error {
		return db.View(func(txn *badger.Txn) (err error) {
			idx, ok, err = getUint64(txn, id)
			return err
		})
	})
	if err != nil {
		return 0, false, fmt.Errorf("antispam lookup: %w", err)
	}
	return idx, ok, nil
}

// getUint64 reads key's value, a big-endian uint64 (an identity's index,
// or the follower's progress), if the key is there.
func getUint64(txn *badger.Txn, key []byte) (uint64, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("value of %q is %d bytes, want 8", key, len(v))
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err == nil, err
}

// Decorator returns the step that answers a known identity with its index
// (IsDup), and refuses adds while the follower is too far behind.
func (s *Store) Decorator() func(tessera.AddFn) tessera.AddFn {
	return func(add tessera.AddFn) tessera.AddFn {
		return func(ctx context.Context, e *tessera.Entry) tessera.IndexFuture {
			if s.pushback.Load() {
				return func() (tessera.Index, error) { return tessera.Index{}, tessera.ErrPushbackAntispam }
			}
			idx, ok, err := s.Lookup(e.Identity())
			switch {
			case err != nil:
				return func() (tessera.Index, error) { return tessera.Index{}, err }
			case ok:
				return func() (tessera.Index, error) { return tessera.Index{Index: idx, IsDup: true}, nil }
			}
			return add(ctx, e)
		}
	}
}

// Follower returns the follower that indexes the log's entries, reading
// each bundle's identities with ids.
func (s *Store) Follower(ids func(bundle []byte) ([][]byte, error)) tessera.Follower {
	return &follower{s: s, ids: ids}
}

type follower struct {
	s   *Store
	ids func([]byte) ([][]byte, error)
}

func (f *follower) Name() string { return "vesperlog Badger antispam" }

// EntriesProcessed returns how many entries are indexed and on disk.
func (f *follower) EntriesProcessed(context.Context) (uint64, error) {
	return f.s.next.Load(), nil
}

// Follow indexes the log until ctx ends or the store closes.
func (f *follower) Follow(ctx context.Context, lr tessera.LogReader) {
	f.s.following.Lock()
	defer f.s.following.Unlock()
	for {
		caught, err := f.step(ctx, lr)
		if errors.Is(err, errClosed) || ctx.Err() != nil {
			return
		}
		if err != nil {
			slog.Warn("antispam follower", "err", err)
		}
		if caught || err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(f.s.opts.Poll):
			}
		}
	}
}

// step indexes one batch; caught reports that the follower had nothing to
// do (or the log is not there yet).
func (f *follower) step(ctx context.Context, lr tessera.LogReader) (caught bool, err error) {
	s := f.s
	size, err := lr.IntegratedSize(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // no checkpoint before the first integration
	}
	if err != nil {
		return true, fmt.Errorf("reading the log's size: %w", err)
	}
	from := s.next.Load()
	switch {
	case from == size:
		s.pushback.Store(false)
		return true, nil
	case from > size:
		return true, fmt.Errorf("indexed %d entries but the log has %d", from, size)
	}
	s.pushback.Store(size-from > s.opts.Pushback)

	n := min(size-from, uint64(s.opts.Batch))
	ids, err := f.read(ctx, lr, from, n, size)
	if err != nil {
		return false, err
	}
	err = s.use(func(db *badger.DB) error {
		return db.Update(func(txn *badger.Txn) error {
			for i, id := range ids {
				// The first index of an identity stands; the transaction
				// sees its own writes, so this holds within the batch too.
				switch _, err := txn.Get(id); {
				case err == nil:
					continue
				case !errors.Is(err, badger.ErrKeyNotFound):
					return err
				}
				if err := txn.Set(id, binary.BigEndian.AppendUint64(nil, from+uint64(i))); err != nil {
					return err
				}
			}
			return txn.Set(nextKey, binary.BigEndian.AppendUint64(nil, from+n))
		})
	})
	if err != nil {
		return false, fmt.Errorf("indexing entries %d to %d: %w", from, from+n, err)
	}
	s.next.Store(from + n)
	if size-(from+n) <= s.opts.Pushback {
		s.pushback.Store(false)
	}
	return false, nil
}

// read returns the identities of entries [from, from+n) of a log of the
// given size. It reads the bundles itself, one after the other: Tessera's
// client.EntryBundles (v1.0.4) streams to the end of the tree whatever its
// N, and its producer goroutine stays blocked, holding bundles, when the
// consumer stops early.
func (f *follower) read(ctx context.Context, lr tessera.LogReader, from, n, size uint64) ([][]byte, error) {
	ids := make([][]byte, 0, n)
	for ri := range layout.Range(from, n, size) {
		b, err := lr.ReadEntryBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return nil, fmt.Errorf("reading entry bundle %d: %w", ri.Index, err)
		}
		bids, err := f.ids(b)
		if err != nil {
			return nil, fmt.Errorf("entry bundle %d: %w", ri.Index, err)
		}
		if uint(len(bids)) <= ri.First {
			return nil, fmt.Errorf("entry bundle %d has %d entries, want more than %d", ri.Index, len(bids), ri.First)
		}
		// Range gives the rest of the first bundle even when the range
		// ends inside it.
		bids = bids[ri.First:]
		bids = bids[:min(uint64(len(bids)), uint64(ri.N), n-uint64(len(ids)))]
		ids = append(ids, bids...)
	}
	if uint64(len(ids)) != n {
		return nil, fmt.Errorf("read %d entries from %d, want %d", len(ids), from, n)
	}
	return ids, nil
}
