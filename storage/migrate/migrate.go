package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/storage"
)

// DefaultWorkers is how many entry bundles are copied at once by default.
const DefaultWorkers = 8

// copyTries is how often Tessera's copier tries each bundle (its
// backoff.WithMaxTries in tessera v1.0.4's migrate.go).
const copyTries = 10

// progressEvery is how often a long copy reports progress.
const progressEvery = 10 * time.Second

// Config says what to copy where.
type Config struct {
	// From is the posix data directory to copy. Its server must be
	// stopped: it is held locked while it is read.
	From string
	// VettingKey and STICTKey are the logs' key files, read only where
	// the source has no binding to verify a checkpoint with. Empty means
	// From/keys/vetting-checkpoint.key and From/keys/stict-p256.jwk.
	VettingKey string
	STICTKey   string
	// Target is the backend to copy into.
	Target storage.Config
	// Workers is how many entry bundles are copied at once; 0 means
	// DefaultWorkers.
	Workers uint
	// Logger reports progress; nil reports nothing.
	Logger *slog.Logger
}

// Result is what was copied.
type Result struct {
	Logs        []LogResult
	Issuers     int      // STI-CT issuer certificates
	Agents      int      // agents in the registry copied, or -1 if none was
	ReceiptKeys int      // receipt keys in the target's history, or -1 if none
	Bindings    []string // the binding documents written or found equal
}

// LogResult is one log, verified on the target.
type LogResult struct {
	Name   string
	Origin string
	VKey   string
	Size   uint64
	Root   []byte // the source checkpoint's, recomputed from the target
	// Copied is false for a log that had a binding but no entries yet.
	Copied bool
}

// Run copies c.From into c.Target. It verifies the whole source first
// and checks the target for contradictions before it writes anything; a
// refusal leaves the target as it was. A copy interrupted after that can
// be run again: Tessera resumes from what the target has integrated.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.From == "" {
		return nil, errors.New("no source directory")
	}
	if c.VettingKey == "" {
		c.VettingKey = filepath.Join(c.From, "keys", "vetting-checkpoint.key")
	}
	if c.STICTKey == "" {
		c.STICTKey = filepath.Join(c.From, "keys", "stict-p256.jwk")
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := sameDir(c); err != nil {
		return nil, err
	}
	src, err := openSource(ctx, &c)
	if err != nil {
		return nil, err
	}
	defer src.close()
	for _, l := range src.logs {
		if l.present {
			c.Logger.Info("source log verified", "log", l.name(), "origin", l.binding.Origin, "size", l.size)
		}
	}

	be, err := storage.Open(ctx, c.Target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer be.Close()
	t := &target{be: be, cfg: c.Target}
	if err := t.check(ctx, src); err != nil {
		return nil, err
	}

	res := &Result{Agents: -1, ReceiptKeys: -1}
	// The bindings first: from here on the target's logs are the source's,
	// and a server started on it with other keys is refused.
	for _, l := range src.logs {
		if err := state.Bind(ctx, be.State(), l.name(), l.binding); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		res.Bindings = append(res.Bindings, "log-"+l.name()+".json")
		// The log's further checkpoint keys, where the source has bound
		// them, so that the target's front ends sign with the same ones.
		for _, k := range state.ExtraKeys {
			name := state.KeyBinding(l.name(), k)
			b, err := state.ReadBinding(ctx, src.be.State(), name)
			if err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
			if b == nil {
				continue
			}
			if err := state.Bind(ctx, be.State(), name, *b); err != nil {
				return nil, fmt.Errorf("target: %w", err)
			}
			res.Bindings = append(res.Bindings, "log-"+name+".json")
		}
	}
	for _, l := range src.logs {
		lr := LogResult{Name: l.name(), Origin: l.binding.Origin, VKey: l.binding.VKey}
		if l.present {
			if err := migrateLog(ctx, &c, t, l); err != nil {
				return nil, err
			}
			lr.Size, lr.Root, lr.Copied = l.size, l.root, true
		}
		res.Logs = append(res.Logs, lr)
	}
	if res.Issuers, err = t.copyIssuers(ctx, src); err != nil {
		return nil, err
	}
	if err := t.copyAgents(ctx, src); err != nil {
		return nil, err
	}
	if src.agents != nil {
		res.Agents = src.nAgents
	}
	if res.ReceiptKeys, err = t.mergeReceiptKeys(ctx, src); err != nil {
		return nil, err
	}
	return res, nil
}

// sameDir refuses a posix target that is the source.
func sameDir(c Config) error {
	if c.Target.Backend != "" && c.Target.Backend != storage.POSIX {
		return nil
	}
	a, err1 := filepath.Abs(c.From)
	b, err2 := filepath.Abs(c.Target.Dir)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return fmt.Errorf("the target is the source directory %s", c.From)
	}
	return nil
}

// migrateLog copies one log's entries with Tessera's migration, then
// checks the target's root for itself and lets the target's log grow.
func migrateLog(ctx context.Context, c *Config, t *target, l *sourceLog) error {
	name := l.name()
	lg := c.Logger.With("log", name)
	stores, err := t.be.Log(ctx, name)
	if err != nil {
		return fmt.Errorf("target %s log: %w", name, err)
	}
	opts := tessera.NewMigrationOptions()
	if l.spec.ct {
		opts = opts.WithCTLayout()
	}
	// No WithAntispam: the target's dedup store (and the STI-CT leaf-hash
	// index) are left empty. On the log's first start on the target their
	// followers index it from entry 0; until the dedup follower reaches the
	// migrated size, vesperlog's catch-up gate (log/catchup.go) answers
	// adds with 503, so a resubmission is never logged twice. Populating
	// it here would index with Tessera's identities, not vesperlog's
	// (log/dedup.go), and be undone by nothing.
	mt, err := tessera.NewMigrationTarget(ctx, stores.Driver, opts)
	if err != nil {
		return fmt.Errorf("target %s log: %w", name, err)
	}

	// Tessera's Migrate waits for both its copier and its integration;
	// if the copier gives up, integration waits for ever for the missing
	// bundle (tessera v1.0.4). So a bundle that cannot be read, or that
	// Tessera has already failed to store copyTries-1 times, ends the
	// migration here, through its context, with the reason.
	mctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var read atomic.Uint64
	tries := newTryCounter()
	get := func(ctx context.Context, n uint64, p uint8) ([]byte, error) {
		if tries.add(n) >= copyTries {
			err := fmt.Errorf("target %s log: storing entry bundle %d failed %d times", name, n, copyTries-1)
			cancel(err)
			return nil, err
		}
		if want := layout.PartialTileSize(0, n, l.size); want != p {
			err := fmt.Errorf("source %s log: Tessera asked for entry bundle %d.%d of tree size %d", name, n, p, l.size)
			cancel(err)
			return nil, err
		}
		b, _, err := l.spec.bundle(ctx, l.read, n, l.size)
		if err != nil {
			err = fmt.Errorf("source %s log: %w", name, err)
			cancel(err)
			return nil, err
		}
		read.Add(1)
		return b, nil
	}
	bundles := (l.size + layout.EntryBundleWidth - 1) / layout.EntryBundleWidth
	lg.Info("copying", "entries", l.size, "bundles", bundles, "workers", c.Workers)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(progressEvery)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				lg.Info("copying", "bundles read", read.Load(), "of", bundles)
			}
		}
	}()
	err = mt.Migrate(mctx, c.Workers, l.size, l.root, get)
	close(done)
	if cause := context.Cause(mctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if err != nil {
		return fmt.Errorf("migrating the %s log: %w", name, err)
	}
	lg.Info("copied; Tessera's root matches the source's", "took", time.Since(start).Round(time.Millisecond))

	if err := t.verify(ctx, l); err != nil {
		return err
	}
	lg.Info("verified: the target's tiles and entry bundles give the source's root")
	if err := advance(ctx, t.cfg, name, l.size); err != nil {
		return fmt.Errorf("target %s log: %w", name, err)
	}
	return nil
}

// advance is advanceSequencer; a test replaces it to show why it is needed.
var advance = advanceSequencer

// tryCounter counts Tessera's attempts at each bundle.
type tryCounter struct {
	mu sync.Mutex
	n  map[uint64]int
}

func newTryCounter() *tryCounter { return &tryCounter{n: map[uint64]int{}} }

func (t *tryCounter) add(bundle uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[bundle]++
	return t.n[bundle]
}

// verify computes the root of the migrated log twice, from the target's
// hash tiles and from its entry bundles, both read through the backend's
// objects (the paths the log serves), and compares each with the source
// checkpoint's root.
func (t *target) verify(ctx context.Context, l *sourceLog) error {
	read := t.objects(l.name())
	root, err := rootFromTiles(ctx, read, l.size)
	if err != nil {
		return fmt.Errorf("target %s log: %w", l.name(), err)
	}
	if !bytes.Equal(root, l.root) {
		return fmt.Errorf("target %s log: its tiles give root %x at size %d, the source checkpoint says %x", l.name(), root, l.size, l.root)
	}
	root, err = l.spec.rootFromBundles(ctx, read, l.size)
	if err != nil {
		return fmt.Errorf("target %s log: %w", l.name(), err)
	}
	if !bytes.Equal(root, l.root) {
		return fmt.Errorf("target %s log: its entry bundles give root %x at size %d, the source checkpoint says %x", l.name(), root, l.size, l.root)
	}
	return nil
}
