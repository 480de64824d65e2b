package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/vesperlog/vesperlog/log/problem"
	"sync"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
)

// Defaults of Config.
const (
	DefaultIssuedAtWindow = 10 * time.Minute
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
}

// Service is the vetting log's write side. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.IssuedAtWindow == 0 {
		cfg.IssuedAtWindow = DefaultIssuedAtWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// Result is the outcome of one statement.
type Result struct {
	Index     uint64
	Duplicate bool   // the agent had logged this digest before
	Receipt   string // compact JWS
	Err       error  // set only in batch results, for a statement that failed after validation
}

// Submit checks statements, appends their leaves and returns one Result per
// statement, in order, once a published checkpoint covers them all. If any
// statement fails its checks, Submit returns an error naming it and appends
// nothing.
func (s *Service) Submit(ctx context.Context, statements []string) ([]Result, error) {
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
	for i, st := range statements {
		leaf, err := s.check(agents, st, now)
		if err != nil {
			if len(statements) > 1 {
				return nil, fmt.Errorf("statement %d: %w", i, err)
			}
			return nil, err
		}
		if leaves[i], err = leaf.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
		}
		subjects[i] = leaf.Subject
	}

	results := make([]Result, len(statements))
	var wg sync.WaitGroup
	for i := range leaves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, dup, _, err := s.cfg.Log.Add(ctx, leaves[i])
			results[i] = Result{Index: idx, Duplicate: dup, Err: err}
		}()
	}
	wg.Wait()
	if len(results) == 1 && results[0].Err != nil {
		return nil, results[0].Err
	}

	// One checkpoint for the whole request: the latest covers every entry.
	cp, err := s.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	for i := range results {
		r := &results[i]
		if r.Err != nil {
			continue
		}
		r.Receipt, r.Err = s.receipt(ctx, r.Index, cp, func(entry []byte) error {
			return sameStatement(entry, subjects[i])
		})
		if len(results) == 1 && r.Err != nil {
			return nil, r.Err
		}
	}
	return results, nil
}

// check turns a statement into a leaf, or says why it is refused.
func (s *Service) check(agents *vetting.Agents, compact string, now time.Time) (*vetting.Leaf, error) {
	st, sig, err := vetting.ParseStatement(compact)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
	}
	agent, err := agents.Lookup(st.AgentKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v; register the agent's public key with the log operator", problem.ErrForbidden, err)
	}
	if err := st.Verify(&agent.Key, sig); err != nil {
		return nil, fmt.Errorf("%w: agent %q: %v", problem.ErrUnauthorized, agent.Name, err)
	}
	iat := time.Unix(int64(st.IssuedAt), 0)
	if d := now.Sub(iat); d > s.cfg.IssuedAtWindow || d < -s.cfg.IssuedAtWindow {
		return nil, fmt.Errorf("%w: iat %s is %s from the log's clock %s; the window is ±%s",
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
	return leaf, nil
}

// sameStatement refuses a resubmission whose subject differs from the one
// logged: the log keeps one entry per agent and digest.
func sameStatement(entry []byte, subject string) error {
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
	return s.receipt(ctx, index, cp, nil)
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
	return idx, nil
}

// receipt builds and signs the receipt of the entry at index in the tree
// that checkpoint cp commits to. check, if set, vets the stored entry first.
func (s *Service) receipt(ctx context.Context, index uint64, cp []byte, check func([]byte) error) (string, error) {
	size, err := checkpointSize(cp)
	if err != nil {
		return "", err
	}
	if index >= size {
		return "", fmt.Errorf("%w: entry %d is not covered by the latest checkpoint (size %d)", problem.ErrNotFound, index, size)
	}
	entry, err := s.cfg.Log.Entry(ctx, index, size)
	if err != nil {
		return "", err
	}
	if check != nil {
		if err := check(entry); err != nil {
			return "", err
		}
	}
	hashes, err := s.cfg.Log.InclusionProof(ctx, index, size)
	if err != nil {
		return "", err
	}
	return s.cfg.Receipts.Sign(&receipts.Receipt{
		Origin:   s.cfg.Log.Origin(),
		Index:    index,
		Entry:    entry,
		Proof:    &receipts.Proof{Index: index, Hashes: hashes, Checkpoint: cp},
		IssuedAt: s.cfg.Now(),
	})
}

// checkpointSize reads the size of one of our own signed checkpoints.
func checkpointSize(signed []byte) (uint64, error) {
	body, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return 0, errors.New("checkpoint has no signature block")
	}
	var c fmtlog.Checkpoint
	if _, err := c.Unmarshal(append(body, '\n')); err != nil {
		return 0, fmt.Errorf("parsing checkpoint: %w", err)
	}
	return c.Size, nil
}

// Identity is the dedup identity of a vetting leaf (for log.Options).
func Identity(entry []byte) ([]byte, error) {
	leaf, err := vetting.ParseLeaf(entry)
	if err != nil {
		return nil, err
	}
	return leaf.Identity(), nil
}
