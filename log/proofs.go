package log

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// Bounds of a tree's caches. A request for an old entry reads tiles and
// bundles no other request shares; past these, what it reads is not kept.
// A full hash tile with its inner nodes is about 28 KiB, a bundle up to
// 256 entries.
const (
	maxTreeTiles   = 256
	maxTreeBundles = 32
)

// tree serves the node hashes and entry bundles of one tree size to
// every request against it, so that the receipts of all the entries a
// checkpoint covers read and hash each tile once, not once a request
// (issue 15: rebuilding each proof's nodes from its tiles was a fifth of
// the CPU at 1,000 single submissions a second).
type tree struct {
	size    uint64
	tiles   flights[tileKey, [][][]byte]
	bundles flights[uint64, [][]byte]
}

type tileKey struct{ level, index uint64 }

// trees keeps the trees of the two largest sizes asked for: the latest
// checkpoint's, and the one before while requests still use it.
type trees struct {
	mu     sync.Mutex // guards latest
	latest [2]*tree   // latest[0] the larger; nil until asked for
}

// get returns the tree of the given size, shared if it is one of the two
// latest, otherwise private to the caller. A new latest tree starts with
// the full tiles and bundles of the one before, as they do not change.
func (ts *trees) get(size uint64) *tree {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.latest {
		if t != nil && t.size == size {
			return t
		}
	}
	t := &tree{size: size}
	t.tiles.init(maxTreeTiles)
	t.bundles.init(maxTreeBundles)
	switch {
	case ts.latest[0] == nil || size > ts.latest[0].size:
		if prev := ts.latest[0]; prev != nil {
			t.tiles.carry(&prev.tiles, func(levels [][][]byte) bool { return len(levels[0]) == layout.TileWidth })
			t.bundles.carry(&prev.bundles, func(entries [][]byte) bool { return len(entries) == layout.EntryBundleWidth })
		}
		ts.latest[0], ts.latest[1] = t, ts.latest[0]
	case ts.latest[1] == nil || size > ts.latest[1].size:
		ts.latest[1] = t
	}
	return t
}

// inclusionProof is the inclusion proof of index in t, as Tessera's
// client.ProofBuilder builds it (the same nodes, rehashed the same way),
// from t's tiles.
func (t *tree) inclusionProof(ctx context.Context, l *Log, index uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, t.size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof nodes: %w", err)
	}
	return t.proof(ctx, l, nodes)
}

// consistencyProof is the consistency proof from the tree of size first
// to t, as Tessera's client.ProofBuilder builds it, from t's tiles.
func (t *tree) consistencyProof(ctx context.Context, l *Log, first uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(first, t.size)
	if err != nil {
		return nil, fmt.Errorf("consistency proof nodes: %w", err)
	}
	return t.proof(ctx, l, nodes)
}

// proof reads the hashes of nodes from t's tiles and rehashes them into
// a proof.
func (t *tree) proof(ctx context.Context, l *Log, nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, 0, len(nodes.IDs))
	for _, id := range nodes.IDs {
		h, err := t.node(ctx, l, uint64(id.Level), id.Index)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	hashes, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("rehashing proof: %w", err)
	}
	// The hashes are the cache's: give the caller copies it may keep or change.
	buf := make([]byte, 0, len(hashes)*rfc6962.DefaultHasher.Size())
	for i, h := range hashes {
		buf = append(buf, h...)
		hashes[i] = buf[len(buf)-len(h):]
	}
	return hashes, nil
}

// node is the hash of the tree node at level and index.
func (t *tree) node(ctx context.Context, l *Log, level, index uint64) ([]byte, error) {
	tl, ti, nl, ni := layout.NodeCoordsToTileAddress(level, index)
	levels, err := t.tiles.get(ctx, tileKey{tl, ti}, func(ctx context.Context) ([][][]byte, error) {
		return l.readTileNodes(ctx, tl, ti, t.size)
	})
	if err != nil {
		return nil, err
	}
	if int(nl) >= len(levels) || ni >= uint64(len(levels[nl])) {
		return nil, fmt.Errorf("node %d/%d of %s: tile %d/%d of tree %d does not hold it", level, index, l.origin, tl, ti, t.size)
	}
	return levels[nl][ni], nil
}

// readTileNodes reads hash tile (level, index) of the tree of the given
// size and hashes every perfect subtree inside it: levels[0] are the
// tile's hashes, levels[k] the roots of 2^k of them.
func (l *Log) readTileNodes(ctx context.Context, level, index, size uint64) ([][][]byte, error) {
	raw, err := l.reader.ReadTile(ctx, level, index, layout.PartialTileSize(level, index, size))
	if err != nil {
		return nil, fmt.Errorf("reading tile %d/%d of %s: %w", level, index, l.origin, err)
	}
	var tile api.HashTile
	if err := tile.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("tile %d/%d of %s: %w", level, index, l.origin, err)
	}
	levels := [][][]byte{tile.Nodes}
	for below := tile.Nodes; len(below) >= 2; {
		up := make([][]byte, len(below)/2)
		for i := range up {
			up[i] = rfc6962.DefaultHasher.HashChildren(below[2*i], below[2*i+1])
		}
		levels = append(levels, up)
		below = up
	}
	return levels, nil
}

// flight is one load of a flights cache: done closes when v or err is set.
type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// flights loads each key once for all the callers that want it at the
// same time, and keeps what loaded, up to max keys.
type flights[K comparable, V any] struct {
	mu  sync.Mutex // guards m
	m   map[K]*flight[V]
	max int
}

func (f *flights[K, V]) init(max int) {
	f.m = map[K]*flight[V]{}
	f.max = max
}

// get returns the value of k, loading it with load unless another caller
// has or is. A load that fails is not kept; those who waited for it load
// on their own, so that one request's cancelled context fails no other.
func (f *flights[K, V]) get(ctx context.Context, k K, load func(context.Context) (V, error)) (V, error) {
	f.mu.Lock()
	fl, ok := f.m[k]
	if !ok {
		fl = &flight[V]{done: make(chan struct{})}
		if len(f.m) >= f.max {
			f.evict()
		}
		if len(f.m) < f.max {
			f.m[k] = fl
		}
	}
	f.mu.Unlock()
	if ok {
		select {
		case <-fl.done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		if fl.err == nil {
			return fl.v, nil
		}
		return load(ctx)
	}
	fl.v, fl.err = load(ctx)
	if fl.err != nil {
		f.mu.Lock()
		if f.m[k] == fl {
			delete(f.m, k)
		}
		f.mu.Unlock()
	}
	close(fl.done)
	return fl.v, fl.err
}

// evict drops one loaded value, chosen at random (map order), so that a
// full cache keeps taking new keys: without it, a tree's cache filled up
// with the old full tiles and bundles carried from tree to tree, and past
// 32 bundles (8,192 entries) every receipt read and hashed its bundle and
// tiles again, so CPU and memory per entry grew with the log. f.mu is held.
func (f *flights[K, V]) evict() {
	for k, fl := range f.m {
		select {
		case <-fl.done:
			delete(f.m, k)
			return
		default:
		}
	}
}

// carry copies into f the values of prev that loaded and that keep says
// stay the same in a larger tree.
func (f *flights[K, V]) carry(prev *flights[K, V], keep func(V) bool) {
	prev.mu.Lock()
	defer prev.mu.Unlock()
	for k, fl := range prev.m {
		select {
		case <-fl.done:
			if fl.err == nil && len(f.m) < f.max && keep(fl.v) {
				f.m[k] = fl
			}
		default:
		}
	}
}

// verifiedCheckpoints remembers the last checkpoints that met a policy,
// so that the requests a checkpoint answers verify its signatures once
// (issue 15: verifying them again for every receipt was an eighth of
// the CPU). A checkpoint is its exact bytes, so a hit is a checkpoint
// verified against that same policy.
type verifiedCheckpoints struct {
	// mu guards last and next, and is held across a verification, so
	// that the requests a new checkpoint releases at once wait for one
	// verification rather than each doing its own.
	mu   sync.Mutex
	last [2]verified
	next int
}

type verified struct {
	p  *policy.Policy
	cp []byte
}

// verify returns nil if checkpoint meets p, verifying it unless it is
// one of the last two that did.
func (v *verifiedCheckpoints) verify(p *policy.Policy, checkpoint []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.last {
		if c.p == p && bytes.Equal(c.cp, checkpoint) {
			return nil
		}
	}
	if _, err := p.Verify(checkpoint); err != nil {
		return err
	}
	// A copy: the caller's slice is not the cache's to keep.
	v.last[v.next] = verified{p: p, cp: bytes.Clone(checkpoint)}
	v.next = (v.next + 1) % len(v.last)
	return nil
}
