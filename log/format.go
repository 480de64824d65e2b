package log

import (
	"fmt"

	"github.com/transparency-dev/tessera"
)

// Format is a log's entry format, chosen once when the log is opened:
// how its entry bundles split into entries, where they are served, how
// Tessera lays them out, and what makes two entries the same.
//
//   - TlogTiles: C2SP tlog-tiles entries, deduplicated by an identity the
//     log's own format derives from each entry (the vetting log).
//   - StaticCT: static-ct-api data tiles, through Tessera's CT appender,
//     deduplicated by the (pre)certificate as Tessera does (the STI-CT log).
type Format interface {
	// bundleDir is where entry bundles are, below tile/.
	bundleDir() string
	// split splits one of the log's entry bundles into its entries.
	split(bundle []byte) ([][]byte, error)
	// truncate keeps the first p entries of a bundle, byte for byte.
	truncate(bundle []byte, p uint8) ([]byte, error)
	// setup configures Tessera's layout and d's identities.
	setup(o *tessera.AppendOptions, d *dedup) *tessera.AppendOptions
	// ct reports whether entries are added with AddCT.
	ct() bool
}

// TlogTiles is the format of a tlog-tiles log whose entries are the same
// when identity says so (identity errs for an entry not of the format).
func TlogTiles(identity func(entry []byte) ([]byte, error)) Format {
	return tlogTiles{identity: identity}
}

// StaticCT is the format of a static-ct-api log; split splits its data
// tiles into their TileLeaf entries.
func StaticCT(split func(bundle []byte) ([][]byte, error)) Format {
	return staticCT{splitTile: split}
}

type tlogTiles struct {
	identity func([]byte) ([]byte, error)
}

func (tlogTiles) bundleDir() string                          { return "entries/" }
func (tlogTiles) split(b []byte) ([][]byte, error)           { return splitTlogBundle(b) }
func (tlogTiles) truncate(b []byte, p uint8) ([]byte, error) { return truncateBundle(b, p) }
func (tlogTiles) ct() bool                                   { return false }
func (f tlogTiles) setup(o *tessera.AppendOptions, d *dedup) *tessera.AppendOptions {
	d.byIdentity(f.identity)
	return o
}

type staticCT struct {
	splitTile func([]byte) ([][]byte, error)
}

func (staticCT) bundleDir() string                  { return "data/" }
func (f staticCT) split(b []byte) ([][]byte, error) { return f.splitTile(b) }
func (staticCT) ct() bool                           { return true }

// setup sets the CT layout; it comes before WithAntispam, which takes its
// bundle hasher (and d keeps Tessera's CT identities).
func (staticCT) setup(o *tessera.AppendOptions, _ *dedup) *tessera.AppendOptions {
	return o.WithCTLayout()
}

// truncate keeps the first p leaves of a data tile.
func (f staticCT) truncate(b []byte, p uint8) ([]byte, error) {
	if p == 0 {
		return b, nil
	}
	leaves, err := f.splitTile(b)
	if err != nil {
		return nil, err
	}
	if len(leaves) < int(p) {
		return nil, fmt.Errorf("data tile shorter than %d entries", p)
	}
	n := 0
	for _, leaf := range leaves[:p] {
		n += len(leaf)
	}
	return b[:n], nil
}
