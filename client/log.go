package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	tclient "github.com/transparency-dev/tessera/client"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Log is a verified view of one log: every checkpoint it returns verifies
// under Policy (the log's signature and the witness quorum), and every
// proof is built from the log's own tiles and checked against it. The
// expected call pattern is
//
//	l := &client.Log{Origin: origin, Policy: p, Fetch: f}
//	cp, raw, err := l.Checkpoint(ctx)
//	err = l.VerifyInclusion(ctx, cp, index, entry)
type Log struct {
	Origin string
	Policy *policy.Policy
	Fetch  Fetcher
	// StaticCT says the log is a static-ct-api log (the STI-CT log): its
	// entries are data-tile leaves, hashed as their RFC 6962
	// MerkleTreeLeaf. Its Fetch then reads data tiles (HTTPOptions.StaticCT).
	StaticCT bool
}

// LeafHash returns the Merkle leaf hash of e: the RFC 6962 hash of the
// entry, or of a static-ct-api leaf's MerkleTreeLeaf, once the leaf is
// checked to parse whole and to name its own index.
func (l *Log) LeafHash(e Entry) ([]byte, error) {
	if !l.StaticCT {
		return rfc6962.DefaultHasher.HashLeaf(e.Data), nil
	}
	leaf, rest, err := stict.ParseTileLeaf(e.Data)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("entry %d: %d bytes after the data-tile leaf", e.Index, len(rest))
	}
	if leaf.LeafIndex != e.Index {
		return nil, fmt.Errorf("entry %d: data-tile leaf says it is entry %d", e.Index, leaf.LeafIndex)
	}
	return leaf.LeafHash(), nil
}

// Checkpoint fetches the log's latest checkpoint and verifies it.
func (l *Log) Checkpoint(ctx context.Context) (*policy.Checkpoint, []byte, error) {
	raw, err := l.Fetch.ReadCheckpoint(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching the checkpoint: %w", err)
	}
	cp, err := l.verify(raw)
	return cp, raw, err
}

func (l *Log) verify(raw []byte) (*policy.Checkpoint, error) {
	cp, err := l.Policy.Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of %s does not verify: %w", l.Origin, err)
	}
	if cp.Origin != l.Origin {
		return nil, fmt.Errorf("checkpoint is for %q, not %q", cp.Origin, l.Origin)
	}
	return cp, nil
}

// InclusionProof builds the inclusion proof of the entry at index in the
// tree that cp commits to. Only the tiles cp's size needs are fetched.
func (l *Log) InclusionProof(ctx context.Context, cp *policy.Checkpoint, index uint64) ([][]byte, error) {
	if index >= cp.Size {
		return nil, fmt.Errorf("entry %d is beyond the tree size %d", index, cp.Size)
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, l.Fetch.ReadTile)
	if err != nil {
		return nil, err
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in %d: %w", index, cp.Size, err)
	}
	return p, nil
}

// VerifyInclusion checks that leafHash is the hash of the entry at index
// in the tree cp commits to, with a proof from the log's tiles.
func (l *Log) VerifyInclusion(ctx context.Context, cp *policy.Checkpoint, index uint64, leafHash []byte) error {
	p, err := l.InclusionProof(ctx, cp, index)
	if err != nil {
		return err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash, p, cp.Hash[:]); err != nil {
		return fmt.Errorf("entry %d is not in the tree of size %d: %w", index, cp.Size, err)
	}
	return nil
}

// ConsistencyProof builds the consistency proof from size old to the tree
// cp commits to.
func (l *Log) ConsistencyProof(ctx context.Context, cp *policy.Checkpoint, old uint64) ([][]byte, error) {
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, l.Fetch.ReadTile)
	if err != nil {
		return nil, err
	}
	p, err := pb.ConsistencyProof(ctx, old, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d to %d: %w", old, cp.Size, err)
	}
	return p, nil
}

// VerifyConsistency checks that the tree older commits to is a prefix of
// the tree newer commits to.
func (l *Log) VerifyConsistency(ctx context.Context, older, newer *policy.Checkpoint) ([][]byte, error) {
	if older.Size > newer.Size {
		return nil, fmt.Errorf("checkpoint of size %d is older than %d", newer.Size, older.Size)
	}
	if older.Size == newer.Size {
		if older.Hash != newer.Hash {
			return nil, errors.New("two checkpoints of one size with different roots")
		}
		return nil, nil
	}
	if older.Size == 0 {
		return nil, nil
	}
	p, err := l.ConsistencyProof(ctx, newer, older.Size)
	if err != nil {
		return nil, err
	}
	return p, proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Hash[:], newer.Hash[:])
}

// RootAt returns the root hash of the tree's first n entries, computed
// from the tiles and proven consistent with cp, so it is as trusted as cp.
func (l *Log) RootAt(ctx context.Context, cp *policy.Checkpoint, n uint64) ([]byte, error) {
	if n > cp.Size || n == 0 {
		return nil, fmt.Errorf("size %d is not between 1 and the tree size %d", n, cp.Size)
	}
	// Only the tiles of cp's size exist (and are all a verifier should
	// ask for); a tile of that size begins with the hashes of any smaller one.
	atCP := func(ctx context.Context, level, index uint64, _ uint8) ([]byte, error) {
		return l.Fetch.ReadTile(ctx, level, index, layout.PartialTileSize(level, index, cp.Size))
	}
	nodes, err := tclient.FetchRangeNodes(ctx, n, atCP)
	if err != nil {
		return nil, err
	}
	r, err := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewRange(0, n, nodes)
	if err != nil {
		return nil, err
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if n == cp.Size {
		if !bytes.Equal(root, cp.Hash[:]) {
			return nil, fmt.Errorf("the tiles give root %x for size %d, the checkpoint says %x", root, n, cp.Hash)
		}
		return root, nil
	}
	p, err := l.ConsistencyProof(ctx, cp, n)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, n, cp.Size, p, root, cp.Hash[:]); err != nil {
		return nil, fmt.Errorf("the tiles' root of size %d is not consistent with the checkpoint: %w", n, err)
	}
	return root, nil
}

// ConsistencyBetween proves that the tree of size m is a prefix of the tree
// of size n, both at most cp's size, and returns the proof and both roots,
// each proven consistent with cp.
func (l *Log) ConsistencyBetween(ctx context.Context, cp *policy.Checkpoint, m, n uint64) ([][]byte, []byte, []byte, error) {
	if m == 0 || m > n {
		return nil, nil, nil, fmt.Errorf("sizes %d and %d: want 0 < m <= n", m, n)
	}
	rm, err := l.RootAt(ctx, cp, m)
	if err != nil {
		return nil, nil, nil, err
	}
	rn, err := l.RootAt(ctx, cp, n)
	if err != nil {
		return nil, nil, nil, err
	}
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, l.Fetch.ReadTile)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := pb.ConsistencyProof(ctx, m, n)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m, n, p, rm, rn); err != nil {
		return nil, nil, nil, fmt.Errorf("consistency %d to %d: %w", m, n, err)
	}
	return p, rm, rn, nil
}

// FindLeaf returns the index of the first entry whose leaf hash is h, in
// the tree cp commits to, by reading its level-0 tiles.
func (l *Log) FindLeaf(ctx context.Context, cp *policy.Checkpoint, h []byte) (uint64, error) {
	for n := uint64(0); n*256 < cp.Size; n++ {
		tile, err := l.Fetch.ReadTile(ctx, 0, n, layout.PartialTileSize(0, n, cp.Size))
		if err != nil {
			return 0, err
		}
		width := min(uint64(256), cp.Size-n*256)
		for i := uint64(0); i < width && int(i+1)*32 <= len(tile); i++ {
			if bytes.Equal(tile[i*32:(i+1)*32], h) {
				return n*256 + i, nil
			}
		}
	}
	return 0, fmt.Errorf("no entry with leaf hash %x in the tree of size %d", h, cp.Size)
}

// Entry is one log entry.
type Entry struct {
	Index uint64
	Data  []byte
}

// Entries streams the entries [from, cp.Size) with at most workers
// bundles fetched at once, in order, in constant memory. They are the
// log's word until checked: Audit checks them against the tree, and a
// single entry is proven with LeafHash and VerifyInclusion (which also
// check that a static-ct-api leaf names its own index).
func (l *Log) Entries(ctx context.Context, cp *policy.Checkpoint, from uint64, workers uint) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if from >= cp.Size {
			return
		}
		size := func(context.Context) (uint64, error) { return cp.Size, nil }
		for b, err := range tclient.EntryBundles(ctx, workers, size, l.Fetch.ReadEntryBundle, from, cp.Size-from) {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			entries, err := l.splitBundle(b.Data)
			if err != nil {
				yield(Entry{}, fmt.Errorf("entry bundle %d: %w", b.RangeInfo.Index, err))
				return
			}
			// A full bundle may answer for a partial one: take only the range asked.
			first, n := uint64(b.RangeInfo.First), uint64(b.RangeInfo.N)
			if uint64(len(entries)) < first+n {
				yield(Entry{}, fmt.Errorf("entry bundle %d has %d entries, want at least %d", b.RangeInfo.Index, len(entries), first+n))
				return
			}
			for i := first; i < first+n; i++ {
				if !yield(Entry{Index: b.RangeInfo.Index*256 + i, Data: entries[i]}, nil) {
					return
				}
			}
		}
	}
}

// splitBundle splits an entry bundle, or a static-ct-api data tile, into
// its entries.
func (l *Log) splitBundle(b []byte) ([][]byte, error) {
	if l.StaticCT {
		return stict.SplitTile(b)
	}
	var eb api.EntryBundle
	if err := eb.UnmarshalText(b); err != nil {
		return nil, err
	}
	return eb.Entries, nil
}
