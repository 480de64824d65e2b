package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	ct "github.com/google/certificate-transparency-go"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Defaults of Config.
const (
	DefaultPublishTimeout = 30 * time.Second
	// MaxEntries is the most get-entries returns at once: one data tile.
	MaxEntries = 256
)

// Config configures a Service.
type Config struct {
	// Log is the STI-CT log, opened with CT set and Signer as its
	// checkpoint signer.
	Log    *vlog.Log
	Signer *stict.Signer
	Roots  *stict.Roots
	// Issuers stores the chain certificates that entries name by
	// fingerprint.
	Issuers *Issuers
	// LeafHashes maps Merkle leaf hashes to indices (for get-proof-by-hash
	// and receipts by hash).
	LeafHashes *vlog.Index
	Receipts   *receipts.Signer
	// Now is the log's clock; nil means time.Now.
	Now func() time.Time
	// PublishTimeout bounds the wait for a checkpoint covering a new
	// entry; 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Policy, if set, is what receipts' checkpoints must meet (see the
	// vetting server's).
	Policy *policy.Policy
	// Metrics, if set, counts submissions and times SCTs.
	Metrics *vlog.Metrics
	// Admission, if set, bounds the entries in flight: submissions past
	// it get 503 before they are checked. Nil admits everything.
	Admission *vlog.Admission
	// PublicURL is the log's static-ct-api prefix as clients reach it
	// (e.g. https://log.example/stict), for log.v3.json; empty means the
	// request's own scheme, host and prefix.
	PublicURL string
	// UsableSince is when the log became usable (its key's creation),
	// log.v3.json's state; zero leaves the state out.
	UsableSince time.Time
}

// Service is the STI-CT log's API. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	return &Service{cfg: cfg}
}

// Added is the outcome of an add-chain or add-pre-chain.
type Added struct {
	SCT       *ct.SignedCertificateTimestamp
	Index     uint64
	Duplicate bool // the (pre)certificate was logged before; SCT is that entry's
}

// Add validates a submitted chain (DER, leaf first) and logs it, or finds
// it logged, and returns its SCT once a published checkpoint covers it.
// Refused chains are problem.ErrBadRequest and change nothing.
func (s *Service) Add(ctx context.Context, chain [][]byte, precert bool) (*Added, error) {
	start := time.Now()
	a, err := s.add(ctx, chain, precert)
	switch {
	case err != nil:
		s.cfg.Metrics.Submission(ctx, Name, problem.Class(err), "")
	case a.Duplicate:
		s.cfg.Metrics.Submission(ctx, Name, vlog.OutcomeDuplicate, "")
	default:
		s.cfg.Metrics.Submission(ctx, Name, vlog.OutcomeAccepted, "")
	}
	if err == nil {
		s.cfg.Metrics.ReceiptLatency(ctx, Name, time.Since(start))
	}
	return a, err
}

func (s *Service) add(ctx context.Context, chain [][]byte, precert bool) (*Added, error) {
	now := s.cfg.Now()
	var v *stict.Validated
	var err error
	s.cfg.Admission.Do(func() { v, err = stict.ValidateChain(chain, s.cfg.Roots, now, precert) })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", problem.ErrBadRequest, err)
	}
	e, err := stict.NewEntry(v, uint64(now.UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", problem.ErrBadRequest, err)
	}
	// Before the entry, so that every fingerprint in the log resolves.
	for _, c := range v.Chain[1:] {
		if err := s.cfg.Issuers.Put(ctx, c.Raw); err != nil {
			return nil, err
		}
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	idx, dup, cp, err := s.cfg.Log.AddCT(actx, e)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return nil, s.cfg.Log.NotPublished(s.cfg.Policy, s.cfg.PublishTimeout, "SCT")
	}
	if err != nil {
		return nil, err
	}
	if dup {
		// The logged entry's timestamp (and chain) are the SCT's.
		size, err := vlog.CheckpointSize(cp)
		if err != nil {
			return nil, err
		}
		p, err := s.cfg.Log.Prover(ctx, size)
		if err != nil {
			return nil, err
		}
		leaf, err := s.leaf(ctx, p, idx)
		if err != nil {
			return nil, err
		}
		e = leaf.Entry()
	}
	sct, err := s.cfg.Signer.SCT(e, idx)
	if err != nil {
		return nil, err
	}
	return &Added{SCT: sct, Index: idx, Duplicate: dup}, nil
}

func (s *Service) leaf(ctx context.Context, p *vlog.Prover, index uint64) (*stict.TileLeaf, error) {
	b, err := p.Entry(ctx, index)
	if err != nil {
		return nil, err
	}
	l, _, err := stict.ParseTileLeaf(b)
	if err != nil {
		return nil, fmt.Errorf("stored entry %d: %w", index, err)
	}
	if l.LeafIndex != index {
		return nil, fmt.Errorf("stored entry %d says it is entry %d", index, l.LeafIndex)
	}
	return l, nil
}

// current returns the latest checkpoint and its size.
func (s *Service) current(ctx context.Context) ([]byte, uint64, error) {
	cp, err := s.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return nil, 0, err
	}
	size, err := vlog.CheckpointSize(cp)
	return cp, size, err
}

// STH returns the latest signed tree head (RFC 6962 get-sth).
func (s *Service) STH(ctx context.Context) (*ct.GetSTHResponse, error) {
	cp, err := s.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return s.cfg.Signer.STH(cp)
}

// Consistency returns the consistency proof between two tree sizes, the
// second at most the published size (RFC 6962 get-sth-consistency).
func (s *Service) Consistency(ctx context.Context, first, second uint64) ([][]byte, error) {
	_, size, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if first > second || second > size {
		return nil, fmt.Errorf("%w: need first <= second <= %d (the published tree size)", problem.ErrBadRequest, size)
	}
	if first == 0 || first == second {
		return [][]byte{}, nil
	}
	// The shared Prover: monitors ask for proofs to the latest size,
	// whose tiles receipts have already read.
	p, err := s.cfg.Log.Prover(ctx, second)
	if err != nil {
		return nil, err
	}
	return p.ConsistencyProof(ctx, first)
}

// ProofByHash returns the index and inclusion proof of the entry whose
// Merkle leaf hash is given, in the tree of size treeSize (RFC 6962
// get-proof-by-hash).
func (s *Service) ProofByHash(ctx context.Context, leafHash []byte, treeSize uint64) (uint64, [][]byte, error) {
	idx, err := s.IndexOf(ctx, leafHash)
	if err != nil {
		return 0, nil, err
	}
	_, size, err := s.current(ctx)
	if err != nil {
		return 0, nil, err
	}
	if treeSize > size {
		return 0, nil, fmt.Errorf("%w: tree_size %d is beyond the published tree size %d", problem.ErrBadRequest, treeSize, size)
	}
	if idx >= treeSize {
		return 0, nil, fmt.Errorf("%w: the entry is at index %d, not in the tree of size %d", problem.ErrNotFound, idx, treeSize)
	}
	p, err := s.cfg.Log.Prover(ctx, treeSize)
	if err != nil {
		return 0, nil, err
	}
	proof, err := p.InclusionProof(ctx, idx)
	return idx, proof, err
}

// IndexOf returns the index of the entry with the given Merkle leaf hash,
// from the leaf-hash index (which lags the log by a few seconds).
func (s *Service) IndexOf(ctx context.Context, leafHash []byte) (uint64, error) {
	if len(leafHash) != sha256.Size {
		return 0, fmt.Errorf("%w: a leaf hash is %d bytes", problem.ErrBadRequest, sha256.Size)
	}
	idx, ok, err := s.cfg.LeafHashes.Lookup(ctx, leafHash)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: no entry with this leaf hash (a new entry is found a few seconds after its SCT)", problem.ErrNotFound)
	}
	return idx, nil
}

// Entries returns entries start to end, inclusive, as RFC 6962 get-entries
// does: fewer if end is past the published tree or the range spans data
// tiles, never none.
func (s *Service) Entries(ctx context.Context, start, end uint64) ([]ct.LeafEntry, error) {
	_, size, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if start > end {
		return nil, fmt.Errorf("%w: start %d is after end %d", problem.ErrBadRequest, start, end)
	}
	if start >= size {
		return nil, fmt.Errorf("%w: start %d is beyond the published tree size %d", problem.ErrBadRequest, start, size)
	}
	end = min(end, size-1, start|(MaxEntries-1))
	leaves, err := s.cfg.Log.ReadBundle(ctx, start/256, size)
	if err != nil {
		return nil, err
	}
	out := make([]ct.LeafEntry, 0, end-start+1)
	for i := start; i <= end; i++ {
		l, _, err := stict.ParseTileLeaf(leaves[i%256])
		if err != nil {
			return nil, fmt.Errorf("stored entry %d: %w", i, err)
		}
		chain, err := s.cfg.Issuers.Chain(ctx, l.Chain)
		if err != nil {
			return nil, fmt.Errorf("stored entry %d: %w", i, err)
		}
		extra, err := l.ExtraData(chain)
		if err != nil {
			return nil, fmt.Errorf("stored entry %d: %w", i, err)
		}
		out = append(out, ct.LeafEntry{LeafInput: l.MerkleTreeLeaf(), ExtraData: extra})
	}
	return out, nil
}

// Roots returns the accepted roots, DER (RFC 6962 get-roots).
func (s *Service) Roots() [][]byte {
	var out [][]byte
	for _, c := range s.cfg.Roots.Certs() {
		out = append(out, c.Raw)
	}
	return out
}

// Receipt returns a receipt for the entry at index against the latest
// checkpoint. Its entry is the RFC 6962 MerkleTreeLeaf, which is what the
// tree hashes.
func (s *Service) Receipt(ctx context.Context, index uint64) (string, error) {
	cp, size, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	if err := s.cfg.Log.MeetsPolicy(s.cfg.Policy, cp); err != nil {
		return "", err
	}
	p, err := s.cfg.Log.Prover(ctx, size)
	if err != nil {
		return "", err
	}
	leaf, err := s.leaf(ctx, p, index)
	if err != nil {
		return "", err
	}
	proof, err := p.InclusionProof(ctx, index)
	if err != nil {
		return "", err
	}
	return s.cfg.Receipts.Sign(&receipts.Receipt{
		Origin:   s.cfg.Log.Origin(),
		Index:    index,
		Entry:    leaf.MerkleTreeLeaf(),
		Proof:    &receipts.Proof{Index: index, Hashes: proof, Checkpoint: cp},
		IssuedAt: s.cfg.Now(),
	})
}

// ReceiptByHash is Receipt for the entry with the given Merkle leaf hash.
func (s *Service) ReceiptByHash(ctx context.Context, leafHash []byte) (uint64, string, error) {
	idx, err := s.IndexOf(ctx, leafHash)
	if err != nil {
		return 0, "", err
	}
	r, err := s.Receipt(ctx, idx)
	return idx, r, err
}

// LeafHash is the key of Config.LeafHashes: the Merkle leaf hash of a
// stored TileLeaf.
func LeafHash(entry []byte) ([]byte, error) {
	l, _, err := stict.ParseTileLeaf(entry)
	if err != nil {
		return nil, err
	}
	return l.LeafHash(), nil
}
