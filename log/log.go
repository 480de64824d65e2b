package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Defaults of Options.
const (
	DefaultCheckpointInterval = time.Second
	// DefaultBatchMaxAge is short because every submitter waits for its
	// entry's checkpoint; Tessera's 250 ms default would add to each wait.
	DefaultBatchMaxAge = 100 * time.Millisecond
	// awaitPoll is how often waiting submitters look for a new checkpoint.
	awaitPoll = 50 * time.Millisecond
)

// Options configure Open.
type Options struct {
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Identity returns an entry's deduplication identity, or an error for
	// an entry that is not of the log's format.
	Identity func(entry []byte) ([]byte, error)
	// Antispam is the persistent dedup store (storage.Open provides one).
	Antispam tessera.Antispam
	// CheckpointInterval is how often a checkpoint is published; 0 means
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Witnesses, if set, must cosign a checkpoint before it is published.
	Witnesses *tessera.WitnessGroup
	// WitnessFailOpen publishes checkpoints without cosignatures when
	// witnesses fail to answer in time.
	WitnessFailOpen bool
}

// Log is one running log. Its methods are safe for concurrent use.
type Log struct {
	origin   string
	appender *tessera.Appender
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	dedup    *dedup
	shutdown func(context.Context) error
	cancel   context.CancelFunc
}

// Open starts a log on driver. Close it to stop its background work.
func Open(ctx context.Context, driver tessera.Driver, o Options) (*Log, error) {
	if o.Signer == nil || o.Identity == nil || o.Antispam == nil {
		return nil, errors.New("log.Open: Signer, Identity and Antispam are required")
	}
	interval := o.CheckpointInterval
	if interval == 0 {
		interval = DefaultCheckpointInterval
	}
	d := newDedup(o.Antispam, o.Identity)
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(o.Signer).
		WithCheckpointInterval(interval).
		WithBatching(tessera.DefaultBatchMaxSize, DefaultBatchMaxAge).
		WithAntispam(tessera.DefaultAntispamInMemorySize, d)
	if o.Witnesses != nil {
		opts = opts.WithWitnesses(*o.Witnesses, &tessera.WitnessOptions{FailOpen: o.WitnessFailOpen})
	}
	// Background work lives as long as the log, not as long as ctx.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	app, shutdown, reader, err := tessera.NewAppender(bg, driver, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting log %q: %w", o.Signer.Name(), err)
	}
	d.reader = reader
	return &Log{
		origin:   o.Signer.Name(),
		appender: app,
		reader:   reader,
		awaiter:  tessera.NewPublicationAwaiter(bg, reader.ReadCheckpoint, awaitPoll),
		dedup:    d,
		shutdown: shutdown,
		cancel:   cancel,
	}, nil
}

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.origin }

// Add appends entry, unless an entry of the same identity is in the log
// already, and waits until a published checkpoint covers it. It returns the
// entry's index, whether it was already logged, and that checkpoint.
// Overload is problem.ErrOverloaded: answer 503 and ask the client to retry.
func (l *Log) Add(ctx context.Context, entry []byte) (uint64, bool, []byte, error) {
	i, cp, err := l.awaiter.Await(ctx, l.appender.Add(ctx, tessera.NewEntry(entry)))
	if err != nil {
		if errors.Is(err, tessera.ErrPushback) {
			return 0, false, nil, fmt.Errorf("%w: %v", problem.ErrOverloaded, err)
		}
		return 0, false, nil, fmt.Errorf("adding to %s: %w", l.origin, err)
	}
	return i.Index, i.IsDup, cp, nil
}

// Lookup returns the index of the entry with the given identity, if the log
// has one.
func (l *Log) Lookup(ctx context.Context, identity []byte) (uint64, bool, error) {
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

// Prover reads entries and builds inclusion proofs in one tree size. It
// caches the tiles and bundles it reads, so that the receipts of a batch
// cost one read of each. It is not safe for concurrent use: make one per
// request.
type Prover struct {
	log     *Log
	size    uint64
	pb      *client.ProofBuilder
	bundles map[uint64][][]byte
}

// Prover returns a Prover for the tree of the given size.
func (l *Log) Prover(ctx context.Context, size uint64) (*Prover, error) {
	pb, err := client.NewProofBuilder(ctx, size, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("proof builder: %w", err)
	}
	return &Prover{log: l, size: size, pb: pb, bundles: map[uint64][][]byte{}}, nil
}

// Entry returns the entry at index.
func (p *Prover) Entry(ctx context.Context, index uint64) ([]byte, error) {
	if index >= p.size {
		return nil, fmt.Errorf("%w: entry %d is beyond the tree size %d", problem.ErrNotFound, index, p.size)
	}
	entries, ok := p.bundles[index/256]
	if !ok {
		b, err := client.GetEntryBundle(ctx, p.log.reader.ReadEntryBundle, index/256, p.size)
		if err != nil {
			return nil, fmt.Errorf("reading entry %d of %s: %w", index, p.log.origin, err)
		}
		entries = b.Entries
		p.bundles[index/256] = entries
	}
	if int(index%256) >= len(entries) {
		return nil, fmt.Errorf("reading entry %d of %s: bundle has only %d entries", index, p.log.origin, len(entries))
	}
	return entries[index%256], nil
}

// InclusionProof returns the inclusion proof of the entry at index.
func (p *Prover) InclusionProof(ctx context.Context, index uint64) ([][]byte, error) {
	h, err := p.pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, p.size, err)
	}
	return h, nil
}

// Reader returns the log's Tessera reader.
func (l *Log) Reader() tessera.LogReader { return l.reader }

// Close waits until every added entry is published, then stops the log.
func (l *Log) Close(ctx context.Context) error {
	err := l.shutdown(ctx)
	l.cancel()
	return err
}
