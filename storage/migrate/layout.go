package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/crypto/cryptobyte"

	"github.com/vesperlog/vesperlog/log/stict"
)

// The logs, by their names in a backend.
const (
	VettingLog = "vetting"
	STICTLog   = "stict" // log/stict/server.Name
)

// layoutSpec is how a log lays out its entry bundles.
type layoutSpec struct {
	name string
	ct   bool // static-ct-api data tiles, else tlog-tiles entry bundles
}

var specs = map[string]layoutSpec{
	VettingLog: {name: VettingLog},
	STICTLog:   {name: STICTLog, ct: true},
}

// entriesPath is the path of entry bundle n (partial size p) below the
// log's root: tlog-tiles tile/entries/..., static-ct-api tile/data/...
// (Tessera's ctEntriesPath).
func (s layoutSpec) entriesPath(n uint64, p uint8) string {
	if s.ct {
		return "tile/data/" + layout.NWithSuffix(0, n, p)
	}
	return layout.EntriesPath(n, p)
}

// split splits a bundle whose first entry is entry first into the entries'
// bytes as the bundle holds them, and their Merkle leaf hashes. A
// static-ct-api entry must carry its own index.
func (s layoutSpec) split(bundle []byte, first uint64) (raw, hashes [][]byte, err error) {
	if s.ct {
		leaves, err := stict.SplitTile(bundle)
		if err != nil {
			return nil, nil, err
		}
		for i, l := range leaves {
			tl, _, err := stict.ParseTileLeaf(l)
			if err != nil {
				return nil, nil, fmt.Errorf("leaf %d: %w", i, err)
			}
			if tl.LeafIndex != first+uint64(i) {
				return nil, nil, fmt.Errorf("leaf %d says it is entry %d, not %d", i, tl.LeafIndex, first+uint64(i))
			}
			hashes = append(hashes, tl.LeafHash())
		}
		return leaves, hashes, nil
	}
	// tlog-tiles: each entry is a big-endian uint16 length and the data.
	b := cryptobyte.String(bundle)
	for !b.Empty() {
		start := b
		var data cryptobyte.String
		if !b.ReadUint16LengthPrefixed(&data) {
			return nil, nil, fmt.Errorf("entry %d is truncated", len(raw))
		}
		raw = append(raw, start[:len(start)-len(b)])
		hashes = append(hashes, rfc6962.DefaultHasher.HashLeaf(data))
	}
	return raw, hashes, nil
}

// readFunc reads a resource by its path below a log's root; a missing one
// is an error wrapping fs.ErrNotExist.
type readFunc func(ctx context.Context, path string) ([]byte, error)

// partialOrFull reads a partial resource, or if it is gone (the tree grew
// past it and the partial was collected) the full one, as Tessera's
// readers do.
func partialOrFull(ctx context.Context, read readFunc, path func(p uint8) string, p uint8) ([]byte, error) {
	b, err := read(ctx, path(p))
	if errors.Is(err, fs.ErrNotExist) && p > 0 {
		b, err = read(ctx, path(0))
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// bundle reads bundle n of a tree of the given size with read, checks
// that it splits into its entries, and returns it with exactly the
// entries of that tree (a full bundle read in place of a collected
// partial one is cut), and their leaf hashes.
func (s layoutSpec) bundle(ctx context.Context, read readFunc, n, size uint64) ([]byte, [][]byte, error) {
	p := layout.PartialTileSize(0, n, size)
	b, err := partialOrFull(ctx, read, func(p uint8) string { return s.entriesPath(n, p) }, p)
	if err != nil {
		return nil, nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	raw, hashes, err := s.split(b, n*layout.EntryBundleWidth)
	if err != nil {
		return nil, nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	want := int(p)
	if p == 0 {
		want = layout.EntryBundleWidth
	}
	if len(raw) < want {
		return nil, nil, fmt.Errorf("entry bundle %d has %d entries, want %d", n, len(raw), want)
	}
	if len(raw) > want {
		b = bytes.Join(raw[:want], nil)
	}
	return b, hashes[:want], nil
}

// rootFromBundles computes the root of the tree of the given size from its
// entry bundles, hashing every entry.
func (s layoutSpec) rootFromBundles(ctx context.Context, read readFunc, size uint64) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for n := uint64(0); n*layout.EntryBundleWidth < size; n++ {
		_, hashes, err := s.bundle(ctx, read, n, size)
		if err != nil {
			return nil, err
		}
		for _, h := range hashes {
			if err := r.Append(h, nil); err != nil {
				return nil, err
			}
		}
	}
	return r.GetRootHash(nil)
}

// rootFromTiles computes the root of the tree of the given size from its
// hash tiles alone.
func rootFromTiles(ctx context.Context, read readFunc, size uint64) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	tiles := func(ctx context.Context, l, i uint64, p uint8) ([]byte, error) {
		return partialOrFull(ctx, read, func(p uint8) string { return layout.TilePath(l, i, p) }, p)
	}
	nodes, err := client.FetchRangeNodes(ctx, size, tiles)
	if err != nil {
		return nil, fmt.Errorf("reading the tiles of tree size %d: %w", size, err)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, size, nodes)
	if err != nil {
		return nil, fmt.Errorf("the tiles of tree size %d: %w", size, err)
	}
	return r.GetRootHash(nil)
}
