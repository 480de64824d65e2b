package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/idempotency"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Defaults of Config.
const (
	DefaultIssuedAtWindow = 10 * time.Minute
	DefaultPublishTimeout = 30 * time.Second
	MaxBatch              = 1000
)

// Config configures a Service.
type Config struct {
	Log *vlog.Log
	// Agents returns the current agent registry (it may be reloaded).
	Agents func() *vetting.Agents
	// Receipts signs receipts.
	Receipts *receipts.Signer
	// IssuedAtWindow is how far a statement's iat may be from the log's
	// clock, either way; 0 means DefaultIssuedAtWindow.
	IssuedAtWindow time.Duration
	// Now is the log's clock; nil means time.Now.
	Now func() time.Time
	// PublishTimeout bounds the wait for a checkpoint covering a new entry
	// (witnesses may be slow or down); 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Policy, if set, is what receipts' checkpoints must meet. A log that
	// publishes without its quorum (witness-fail-open) then answers 503
	// rather than hand out receipts its verifiers would refuse.
	Policy *policy.Policy
	// Metrics, if set, counts submissions and times receipts.
	Metrics *vlog.Metrics
	// Idempotency, if set, keeps the answers of submissions that carry an
	// Idempotency-Key; without it the header is ignored.
	Idempotency *idempotency.Store
	// Admission, if set, bounds the entries in flight: submissions past
	// it get 503 before they are checked. Nil admits everything.
	Admission *vlog.Admission
}

// Service is the vetting log's write side. It is safe for concurrent use.
type Service struct {
	cfg    Config
	limits *limiter // the agents' rate limits in this front end
	// stopSweep stops the sweep of expired idempotency records that Open
	// started; nil for a Service made by New.
	stopSweep func()
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.IssuedAtWindow == 0 {
		cfg.IssuedAtWindow = DefaultIssuedAtWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	return &Service{cfg: cfg, limits: newLimiter()}
}

// Result is the outcome of one statement.
type Result struct {
	Index     uint64
	Duplicate bool   // the agent had logged this digest before
	Receipt   string // compact JWS
	Err       error  // set only in batch results, for a statement that failed after validation
	Agent     string // the registered name of the agent that signed the statement
}

// Submit checks statements, appends their leaves and returns one Result per
// statement, in order, once a published checkpoint covers them all. If any
// statement fails its checks, or the request is over an agent's rate limit
// (each statement counts), Submit returns an error naming it and appends
// nothing.
func (s *Service) Submit(ctx context.Context, statements []string) (_ []Result, err error) {
	start := time.Now()
	names := make([]string, min(len(statements), MaxBatch+1))
	var results []Result
	defer func() { s.record(ctx, start, names, results, err) }()
	if len(statements) == 0 {
		return nil, fmt.Errorf("%w: no statements", problem.ErrBadRequest)
	}
	if len(statements) > MaxBatch {
		return nil, fmt.Errorf("%w: %d statements, at most %d per request", problem.ErrTooLarge, len(statements), MaxBatch)
	}
	now := s.cfg.Now()
	agents := s.cfg.Agents()
	leaves := make([][]byte, len(statements))
	subjects := make([]string, len(statements))
	errs := make([]error, len(statements))
	signers := make([]*vetting.Agent, len(statements))
	// Signature checks dominate; spread them over the cores.
	s.parallel(len(statements), func(i int) {
		leaf, agent, err := s.check(agents, statements[i], now)
		if agent != nil {
			signers[i], names[i] = agent, agent.Name
			problem.NoteAgent(ctx, agent.Name)
		}
		if err == nil {
			leaves[i], err = leaf.MarshalBinary()
			subjects[i] = leaf.Subject
		}
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil && len(statements) > 1 {
			return nil, fmt.Errorf("statement %d: %w", i, err)
		} else if err != nil {
			return nil, err
		}
	}
	// Only statements that verify count against their agent's limit: no
	// one else can spend it.
	count := make(map[*vetting.Agent]int)
	for _, ag := range signers {
		count[ag]++
	}
	if err := s.limits.take(agents, count, now); err != nil {
		return nil, err
	}

	results = make([]Result, len(statements))
	// cps[i] is the checkpoint that covered entry i when it was added.
	cps := make([][]byte, len(statements))
	actx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	add := func(i int) {
		idx, dup, cp, err := s.cfg.Log.Add(actx, leaves[i])
		cps[i] = cp
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			// Sequenced, perhaps, but not published: the witnesses may
			// not have met the quorum. A retry returns the entry.
			err = s.cfg.Log.NotPublished(s.cfg.Policy, s.cfg.PublishTimeout, "receipt")
		}
		results[i] = Result{Index: idx, Duplicate: dup, Err: err, Agent: names[i]}
	}
	if len(leaves) == 1 {
		add(0) // no goroutine for a single submission
	} else {
		// Each add waits for its checkpoint: all of them at once.
		var wg sync.WaitGroup
		for i := range leaves {
			wg.Go(func() { add(i) })
		}
		wg.Wait()
	}
	if len(results) == 1 && results[0].Err != nil {
		return nil, results[0].Err
	}

	// One checkpoint for the whole request: the largest that covered one
	// of its entries covers them all. It is the one the log's awaiter
	// read, the same bytes for every request it released, so they share
	// its verification and proof tiles, and no request reads it again.
	cp, err := largest(cps)
	if err != nil {
		return nil, err
	}
	if cp == nil {
		if cp, err = s.cfg.Log.Checkpoint(ctx); err != nil {
			return nil, err
		}
	}
	rb, err := s.newReceiptBuilder(ctx, cp)
	if err != nil {
		return nil, err
	}
	for i := range results {
		if results[i].Err == nil {
			// Not through Do: it reads tiles, and a core token held
			// across I/O would idle that core.
			results[i].Err = rb.prepare(ctx, i, results[i].Index, &subjects[i])
		}
	}
	s.parallel(len(results), func(i int) {
		if results[i].Err == nil {
			results[i].Receipt, results[i].Err = rb.sign(i)
		}
	})
	if len(results) == 1 && results[0].Err != nil {
		return nil, results[0].Err
	}
	return results, nil
}

// largest returns the checkpoint of the largest tree among cps (nil ones
// skipped), or nil if all are.
func largest(cps [][]byte) ([]byte, error) {
	var cp []byte
	var size uint64
	for _, c := range cps {
		if c == nil || bytes.Equal(c, cp) {
			continue
		}
		n, err := vlog.CheckpointSize(c)
		if err != nil {
			return nil, err
		}
		if cp == nil || n > size {
			cp, size = c, n
		}
	}
	return cp, nil
}

// record counts the statements of one Submit by outcome and agent, and
// times the receipts it issued. A request refused whole counts each of its
// statements as refused for the request's reason.
func (s *Service) record(ctx context.Context, start time.Time, names []string, results []Result, err error) {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	err = problem.ClientGone(ctx, err)
	if err != nil {
		if len(names) > MaxBatch {
			names = names[:1] // a batch too large to read counts once
		}
		for _, name := range names {
			m.Submission(ctx, Name, problem.Class(err), name)
		}
		return
	}
	took := time.Since(start)
	for _, r := range results {
		switch {
		case r.Err != nil:
			m.Submission(ctx, Name, problem.Class(problem.ClientGone(ctx, r.Err)), r.Agent)
			continue
		case r.Duplicate:
			m.Submission(ctx, Name, vlog.OutcomeDuplicate, r.Agent)
		default:
			m.Submission(ctx, Name, vlog.OutcomeAccepted, r.Agent)
		}
		m.ReceiptLatency(ctx, Name, took)
	}
}

// parallel runs f(0) … f(n-1) on as many goroutines as there are cores,
// each call when the Admission lets it have a core (Do).
func (s *Service) parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		// Inline: a new goroutine would grow a fresh stack for the
		// signature code on every single submission (a tenth of the CPU
		// at 1,000 submissions/s).
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				s.cfg.Admission.Do(func() { f(i) })
			}
		}()
	}
	wg.Wait()
}

// check turns a statement into a leaf, or says why it is refused. It
// returns the registered agent, once known, for rate limits, metrics and
// logs: a name from the registry, never from the request.
func (s *Service) check(agents *vetting.Agents, compact string, now time.Time) (*vetting.Leaf, *vetting.Agent, error) {
	st, sig, err := vetting.ParseStatement(compact)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
	}
	agent, err := agents.Lookup(st.AgentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v; register the agent's public key with the log operator", problem.ErrForbidden, err)
	}
	if err := agent.VerifyStatement(st, sig); err != nil {
		return nil, agent, fmt.Errorf("%w: agent %q: %v", problem.ErrUnauthorized, agent.Name, err)
	}
	// now is also the leaf's timestamp, which verifiers compare with the
	// revocation: the log and its verifiers draw the line at one instant.
	if err := agent.ValidAt(now); err != nil {
		return nil, agent, fmt.Errorf("%w: %v; it may no longer log", problem.ErrForbidden, err)
	}
	iat := time.Unix(int64(st.IssuedAt), 0)
	if d := now.Sub(iat); d > s.cfg.IssuedAtWindow || d < -s.cfg.IssuedAtWindow {
		return nil, agent, fmt.Errorf("%w: iat %s is %s from the log's clock %s; the window is ±%s",
			problem.ErrBadRequest, iat.UTC().Format(time.RFC3339), d.Round(time.Second), now.UTC().Format(time.RFC3339), s.cfg.IssuedAtWindow)
	}
	leaf := &vetting.Leaf{
		Timestamp: uint64(now.UnixMilli()),
		Alg:       st.Alg,
		AgentKey:  st.AgentKey,
		Digest:    st.Digest,
		IssuedAt:  st.IssuedAt,
		Subject:   st.Subject,
	}
	copy(leaf.Signature[:], sig)
	return leaf, agent, nil
}

// sameSubject refuses a resubmission whose subject differs from the one
// logged: the log keeps one entry per agent and digest.
func sameSubject(entry []byte, subject string) error {
	leaf, err := vetting.ParseLeaf(entry)
	if err != nil {
		return fmt.Errorf("stored entry: %w", err)
	}
	if leaf.Subject != subject {
		return fmt.Errorf("%w: this agent logged this digest already, with subject %q", problem.ErrConflict, leaf.Subject)
	}
	return nil
}

// Receipt returns a receipt for the entry at index against the latest checkpoint.
func (s *Service) Receipt(ctx context.Context, index uint64) (string, error) {
	cp, err := s.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return "", err
	}
	rb, err := s.newReceiptBuilder(ctx, cp)
	if err != nil {
		return "", err
	}
	if err := rb.prepare(ctx, 0, index, nil); err != nil {
		return "", err
	}
	return rb.sign(0)
}

// Lookup returns the index of the entry in which agent logged digest.
func (s *Service) Lookup(ctx context.Context, agent, digest [32]byte) (uint64, error) {
	idx, ok, err := s.cfg.Log.Lookup(ctx, vetting.Identity(agent, digest))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: this agent has not logged this digest", problem.ErrNotFound)
	}
	// The dedup store may know an entry before a checkpoint covers it; an
	// index is only useful once its receipt can be had.
	cp, err := s.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	size, err := vlog.CheckpointSize(cp)
	if err != nil {
		return 0, err
	}
	if idx >= size {
		return 0, fmt.Errorf("%w: this digest is logged at %d but not yet published (checkpoint size %d); ask again in a second", problem.ErrNotFound, idx, size)
	}
	return idx, nil
}

// receiptBuilder makes the receipts of one request against one checkpoint:
// prepare reads entries and proofs (sequentially, sharing the prover's
// cache), sign signs them (safe in parallel).
type receiptBuilder struct {
	s      *Service
	cp     []byte
	prover *vlog.Prover
	// mu guards prepared, which prepare writes and sign reads.
	mu       sync.Mutex
	prepared map[int]*receipts.Receipt
}

func (s *Service) newReceiptBuilder(ctx context.Context, cp []byte) (*receiptBuilder, error) {
	if err := s.cfg.Log.MeetsPolicy(s.cfg.Policy, cp); err != nil {
		return nil, err
	}
	size, err := vlog.CheckpointSize(cp)
	if err != nil {
		return nil, err
	}
	p, err := s.cfg.Log.Prover(ctx, size)
	if err != nil {
		return nil, err
	}
	return &receiptBuilder{s: s, cp: cp, prover: p, prepared: map[int]*receipts.Receipt{}}, nil
}

// prepare reads the entry at index and its proof, as receipt number i. If
// subject is set, the stored entry must carry that subject: the log keeps
// one entry per agent and digest, and a resubmission with another subject
// is refused.
func (rb *receiptBuilder) prepare(ctx context.Context, i int, index uint64, subject *string) error {
	entry, err := rb.prover.Entry(ctx, index)
	if err != nil {
		return err
	}
	if subject != nil {
		if err := sameSubject(entry, *subject); err != nil {
			return err
		}
	}
	hashes, err := rb.prover.InclusionProof(ctx, index)
	if err != nil {
		return err
	}
	rb.mu.Lock()
	rb.prepared[i] = &receipts.Receipt{
		Origin:   rb.s.cfg.Log.Origin(),
		Index:    index,
		Entry:    entry,
		Proof:    &receipts.Proof{Index: index, Hashes: hashes, Checkpoint: rb.cp},
		IssuedAt: rb.s.cfg.Now(),
	}
	rb.mu.Unlock()
	return nil
}

func (rb *receiptBuilder) sign(i int) (string, error) {
	rb.mu.Lock()
	r := rb.prepared[i]
	rb.mu.Unlock()
	return rb.s.cfg.Receipts.Sign(r)
}

// Identity is the dedup identity of a vetting leaf (for log.Options).
func Identity(entry []byte) ([]byte, error) {
	leaf, err := vetting.ParseLeaf(entry)
	if err != nil {
		return nil, err
	}
	return leaf.Identity(), nil
}
