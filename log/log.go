package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Defaults of Options.
const (
	DefaultCheckpointInterval = time.Second
	// DefaultBatchMaxAge is short because every submitter waits for its
	// entry's checkpoint; Tessera's 250 ms default would add to each wait.
	DefaultBatchMaxAge = 100 * time.Millisecond
	// awaitPoll is how often the published checkpoint is read when no new
	// one has just been signed.
	awaitPoll = 50 * time.Millisecond
)

// Options configure Open.
type Options struct {
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// ExtraSigners also sign each checkpoint, after Signer (an STI-CT
	// log's Ed25519 key, which C2SP witnesses can verify). Their names
	// must be the origin too.
	ExtraSigners []note.Signer
	// Format is the log's entry format: TlogTiles or StaticCT.
	Format Format
	// Antispam is the persistent dedup store (storage.Open provides one).
	Antispam tessera.Antispam
	// Claims, if set, makes dedup exact across the processes that share
	// the log's storage (storage.Stores.Claims).
	Claims Claims
	// CheckpointInterval is how often a checkpoint is published; 0 means
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Witnesses, if set, must cosign a checkpoint before it is published.
	Witnesses *tessera.WitnessGroup
	// WitnessFailOpen publishes checkpoints without cosignatures when
	// witnesses fail to answer in time.
	WitnessFailOpen bool
	// WitnessRecorder, if set, is the transport of the driver's witness
	// client (storage.Config.WitnessClient); NotPublished reports from it.
	WitnessRecorder *WitnessRecorder
}

// Log is one running log. Its methods are safe for concurrent use.
type Log struct {
	origin    string
	format    Format
	witnesses *WitnessRecorder // nil without one
	bg        context.Context  // lives until Close
	appender  *tessera.Appender
	addCT     func(context.Context, *ctonly.Entry) tessera.IndexFuture
	reader    tessera.LogReader
	awaiter   *awaiter
	dedup     *dedup
	shutdown  func(context.Context) error
	cancel    context.CancelFunc
	// stopped closes when the claims goroutine (started by Open, stopped
	// by Close through cancel) has returned.
	stopped chan struct{}
	// trees share the tiles and bundles of the latest tree sizes between
	// the Provers of all requests.
	trees trees
	// verified are the last checkpoints MeetsPolicy passed.
	verified verifiedCheckpoints
}

// Open starts a log on driver. Close it to stop its background work.
func Open(ctx context.Context, driver tessera.Driver, o Options) (*Log, error) {
	if o.Signer == nil || o.Antispam == nil || o.Format == nil {
		return nil, errors.New("log.Open: Signer, Antispam and Format are required")
	}
	for _, s := range o.ExtraSigners {
		if s.Name() != o.Signer.Name() {
			return nil, fmt.Errorf("log.Open: checkpoint key %q is not named by the origin %q", s.Name(), o.Signer.Name())
		}
	}
	interval := o.CheckpointInterval
	if interval == 0 {
		interval = DefaultCheckpointInterval
	}
	aw := newAwaiter(awaitPoll)
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(kickSigner{Signer: o.Signer, signed: aw.signed}, o.ExtraSigners...).
		WithCheckpointInterval(interval).
		WithBatching(tessera.DefaultBatchMaxSize, DefaultBatchMaxAge)
	gate := newCatchUp(o.Antispam)
	d := newDedup(gate, o.Claims)
	opts = o.Format.setup(opts, d).WithAntispam(tesseraRecentSize, d)
	if o.Witnesses != nil {
		opts = opts.WithWitnesses(*o.Witnesses, &tessera.WitnessOptions{FailOpen: o.WitnessFailOpen}).
			WithCheckpointRepublishInterval(max(WitnessRepublishInterval, interval))
	}
	// Background work lives as long as the log, not as long as ctx.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	app, shutdown, reader, err := tessera.NewAppender(bg, driver, opts)
	if err != nil && o.Witnesses != nil && o.WitnessRecorder != nil {
		if r := o.WitnessRecorder.Report(o.Signer.Name(), nil); r != "" {
			// A new log publishes its empty checkpoint at once, and
			// Tessera wants it cosigned: say so on one line, and what to do.
			cancel()
			return nil, &causeError{msg: fmt.Sprintf("starting log %q: its witnesses did not cosign its checkpoint (%s): make them reachable, or create the log by starting once without witnesses", o.Signer.Name(), r), cause: err}
		}
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting log %q: %w", o.Signer.Name(), err)
	}
	if err := gate.start(ctx, reader); err != nil {
		cancel()
		return nil, fmt.Errorf("starting log %q: %w", o.Signer.Name(), errors.Join(err, shutdown(ctx)))
	}
	l := &Log{
		origin:    o.Signer.Name(),
		witnesses: o.WitnessRecorder,
		format:    o.Format,
		bg:        bg,
		appender:  app,
		addCT:     tessera.NewCertificateTransparencyAppender(app),
		reader:    reader,
		awaiter:   aw,
		dedup:     d,
		shutdown:  shutdown,
		cancel:    cancel,
		stopped:   make(chan struct{}),
	}
	aw.read = reader.ReadCheckpoint
	go aw.run(bg)
	if o.Claims != nil {
		go l.forgetClaims(o.Claims, gate)
	} else {
		close(l.stopped)
	}
	return l, nil
}

// forgetClaimsEvery is how often settled claims the antispam store has
// indexed are dropped.
const forgetClaimsEvery = 30 * time.Second

// forgetClaims keeps the claims table to the follower's lag. It runs
// from Open until Close.
func (l *Log) forgetClaims(c Claims, gate *catchUp) {
	defer close(l.stopped)
	t := time.NewTicker(forgetClaimsEvery)
	defer t.Stop()
	for {
		select {
		case <-l.bg.Done():
			return
		case <-t.C:
		}
		if gate.follower == nil {
			continue
		}
		n, err := gate.follower.EntriesProcessed(l.bg)
		if err == nil {
			err = c.Forget(l.bg, n)
		}
		if err != nil && l.bg.Err() == nil {
			slog.Warn("dropping settled dedup claims", "log", l.origin, "err", err)
		}
	}
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Add appends entry, unless an entry of the same identity is in the log
// already, and waits until a published checkpoint covers it. It returns the
// entry's index, whether it was already logged, and that checkpoint.
// Overload is problem.ErrOverloaded: answer 503 and ask the client to retry.
func (l *Log) Add(ctx context.Context, entry []byte) (uint64, bool, []byte, error) {
	if l.format.ct() {
		return 0, false, nil, errors.New("a CT log takes AddCT")
	}
	return l.await(ctx, l.appender.Add(ctx, tessera.NewEntry(entry)))
}

// AddCT is Add for a CT log: e is logged unless its (pre)certificate is
// already, and the index returned is that of the logged entry, whose
// timestamp may then differ from e's.
func (l *Log) AddCT(ctx context.Context, e *ctonly.Entry) (uint64, bool, []byte, error) {
	if !l.format.ct() {
		return 0, false, nil, errors.New("AddCT needs a CT log")
	}
	return l.await(ctx, l.addCT(ctx, e))
}

func (l *Log) await(ctx context.Context, f tessera.IndexFuture) (uint64, bool, []byte, error) {
	i, cp, err := l.awaiter.await(ctx, f)
	if err != nil {
		if errors.Is(err, tessera.ErrPushback) {
			return 0, false, nil, fmt.Errorf("%w: %v", problem.ErrOverloaded, err)
		}
		if ctx.Err() == nil && l.bg.Err() != nil {
			// Close stopped the log while the entry waited for its
			// checkpoint: a 503, not a failure of the request.
			return 0, false, nil, fmt.Errorf("%w: the log is stopping before a checkpoint covered the entry; a sequenced entry stays in the log and is published after the restart: submit again then", problem.ErrOverloaded)
		}
		return 0, false, nil, fmt.Errorf("adding to %s: %w", l.origin, err)
	}
	return i.Index, i.IsDup, cp, nil
}

// Lookup returns the index of the entry with the given identity, if the log
// has one.
func (l *Log) Lookup(ctx context.Context, identity []byte) (uint64, bool, error) {
	if l.format.ct() {
		return 0, false, errors.New("a CT log has no identity lookup; use an Index")
	}
	return l.dedup.lookup(ctx, identity)
}

// Checkpoint returns the latest published checkpoint, with any cosignatures.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no checkpoint published yet", problem.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint of %s: %w", l.origin, err)
	}
	return cp, nil
}

// Prover reads entries and builds inclusion proofs in one tree size. The
// Provers of the two latest sizes asked for share the tiles and bundles
// they read and the node hashes they compute, so that the receipts of
// all the entries one checkpoint covers read and hash each tile once. It
// is safe for concurrent use.
type Prover struct {
	log  *Log
	tree *tree
}

// Prover returns a Prover for the tree of the given size.
func (l *Log) Prover(ctx context.Context, size uint64) (*Prover, error) {
	return &Prover{log: l, tree: l.trees.get(size)}, nil
}

// Entry returns the entry at index. The caller must not change it.
func (p *Prover) Entry(ctx context.Context, index uint64) ([]byte, error) {
	size := p.tree.size
	if index >= size {
		return nil, fmt.Errorf("%w: entry %d is beyond the tree size %d", problem.ErrNotFound, index, size)
	}
	n, i := index/layout.EntryBundleWidth, index%layout.EntryBundleWidth
	entries, err := p.tree.bundles.get(ctx, n, func(ctx context.Context) ([][]byte, error) {
		return p.log.ReadBundle(ctx, n, size)
	})
	if err != nil {
		return nil, err
	}
	if int(i) >= len(entries) {
		return nil, fmt.Errorf("reading entry %d of %s: bundle has only %d entries", index, p.log.origin, len(entries))
	}
	return entries[i], nil
}

// InclusionProof returns the inclusion proof of the entry at index.
func (p *Prover) InclusionProof(ctx context.Context, index uint64) ([][]byte, error) {
	h, err := p.tree.inclusionProof(ctx, p.log, index)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, p.tree.size, err)
	}
	return h, nil
}

// ConsistencyProof returns the consistency proof from the tree of size
// first, at most the Prover's, to the Prover's tree.
func (p *Prover) ConsistencyProof(ctx context.Context, first uint64) ([][]byte, error) {
	h, err := p.tree.consistencyProof(ctx, p.log, first)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", first, p.tree.size, err)
	}
	return h, nil
}

// ReadBundle returns the entries of bundle n in the tree of the given
// size: tlog-tiles entries, or a CT log's TileLeafs.
func (l *Log) ReadBundle(ctx context.Context, n, size uint64) ([][]byte, error) {
	if n > size/layout.EntryBundleWidth || (n == size/layout.EntryBundleWidth && size%layout.EntryBundleWidth == 0) {
		return nil, fmt.Errorf("%w: bundle %d is beyond the tree size %d", problem.ErrNotFound, n, size)
	}
	p := layout.PartialTileSize(0, n, size)
	b, err := l.reader.ReadEntryBundle(ctx, n, p)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %d of %s: %w", n, l.origin, err)
	}
	entries, err := l.format.split(b)
	if err != nil {
		return nil, fmt.Errorf("bundle %d of %s: %w", n, l.origin, err)
	}
	// The reader may answer a partial bundle that is gone with the full one.
	want := int(p)
	if p == 0 {
		want = layout.EntryBundleWidth
	}
	if len(entries) < want {
		return nil, fmt.Errorf("bundle %d of %s has %d entries, want %d", n, l.origin, len(entries), want)
	}
	return entries[:want], nil
}

// Reader returns the log's Tessera reader.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Close waits until every added entry is published, then stops the log.
func (l *Log) Close(ctx context.Context) error {
	err := l.shutdown(ctx)
	l.cancel()
	<-l.stopped
	<-l.awaiter.done
	return err
}

// CheckpointSize reads the size of one of the log's own signed checkpoints.
func CheckpointSize(signed []byte) (uint64, error) {
	body, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return 0, errors.New("checkpoint has no signature block")
	}
	var c fmtlog.Checkpoint
	// The body with its newline, without writing to signed: the requests
	// an awaiter releases share one checkpoint's bytes.
	if _, err := c.Unmarshal(signed[:len(body)+1]); err != nil {
		return 0, fmt.Errorf("parsing checkpoint: %w", err)
	}
	return c.Size, nil
}

// causeError is an error whose one-line message says it all, and which
// still wraps its cause (Tessera's, over several lines).
type causeError struct {
	msg   string
	cause error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.cause }

// ParseIndex reads an entry index from a request path: decimal, in
// canonical form (no sign, no leading zeros), as problem.ErrBadRequest if not.
func ParseIndex(s string) (uint64, error) {
	i, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(i, 10) != s {
		return 0, fmt.Errorf("%w: index %q is not a decimal entry index", problem.ErrBadRequest, s)
	}
	return i, nil
}
