package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// ErrBadEntry is wrapped by the errors of a Check that convict the log of
// one entry: it logged what it should have refused (ChainChecker's chain
// failures, for instance). An auditor reports such an entry and goes on
// (AuditOptions.BadEntry); any other error stops the audit.
var ErrBadEntry = errors.New("the log holds entries it should have refused")

// badEntry marks err as ErrBadEntry without repeating its text.
type badEntry struct{ error }

func (e badEntry) Is(target error) bool { return target == ErrBadEntry }
func (e badEntry) Unwrap() error        { return e.error }

// AuditOptions configure Audit.
type AuditOptions struct {
	// Check is called for every entry, in order, once the tree is known
	// to commit to it; an error stops the audit, unless BadEntry takes it.
	Check func(index uint64, entry []byte) error
	// BadEntry, if set, is told of every entry whose Check error wraps
	// ErrBadEntry, and the audit goes on: the tree is still recomputed
	// whole, and Audit then fails with ErrBadEntry, counting them.
	BadEntry func(index uint64, err error)
	// Progress is called about once a second, and at the end.
	Progress func(AuditProgress)
	// ResumeFile, if set, keeps the audit's position (the compact range of
	// the entries checked), so that an interrupted audit resumes there.
	ResumeFile string
	// Workers bounds the entry bundles fetched at once; 0 means 4.
	Workers uint
}

// AuditProgress says how far an audit is.
type AuditProgress struct {
	Done, Total uint64 // entries
	Resumed     uint64 // entries checked by an earlier run
	Elapsed     time.Duration
}

// resumeState is the resume file: the compact range [0, Size) of the leaf
// hashes checked so far, for the log Origin, and the bad entries found
// in them (so that a resumed audit still fails).
type resumeState struct {
	Origin   string   `json:"origin"`
	Size     uint64   `json:"size"`
	Hashes   [][]byte `json:"hashes"`
	Bad      uint64   `json:"bad_entries,omitempty"`
	FirstBad string   `json:"first_bad_entry,omitempty"`
}

// Audit downloads every entry of the tree cp commits to, recomputes the
// tree, and fails unless its root is cp's root hash. It also checks each
// level-0 tile against the entries' hashes, and calls o.Check on every
// entry. Memory stays constant whatever the log's size: entries stream
// through a compact range, O(log n) hashes.
//
// For a static-ct-api log (StaticCT) the tree commits to each data-tile
// leaf's TimestampedEntry only: the precertificate and chain fingerprints
// beside it are checked by ChainChecker, as o.Check.
func (l *Log) Audit(ctx context.Context, cp *policy.Checkpoint, o AuditOptions) error {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	resumed := uint64(0)
	var bad uint64      // entries BadEntry was told of, this run and before
	var firstBad string // the first of them, with its error
	if o.ResumeFile != "" {
		b, err := os.ReadFile(o.ResumeFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			var st resumeState
			if err := json.Unmarshal(b, &st); err != nil || st.Origin != l.Origin || st.Size > cp.Size {
				return fmt.Errorf("resume file %s is not for this log, or is ahead of its checkpoint", o.ResumeFile)
			}
			if r, err = rf.NewRange(0, st.Size, st.Hashes); err != nil {
				return fmt.Errorf("resume file %s: %w", o.ResumeFile, err)
			}
			resumed, bad, firstBad = st.Size, st.Bad, st.FirstBad
		}
	}
	save := func() error {
		if o.ResumeFile == "" {
			return nil
		}
		b, err := json.Marshal(resumeState{Origin: l.Origin, Size: r.End(), Hashes: r.Hashes(), Bad: bad, FirstBad: firstBad})
		if err != nil {
			return err
		}
		return keys.WriteFile(o.ResumeFile, b, 0o644)
	}
	workers := o.Workers
	if workers == 0 {
		workers = 4
	}
	start, last := time.Now(), time.Now()
	report := func() {
		if o.Progress != nil {
			o.Progress(AuditProgress{Done: r.End(), Total: cp.Size, Resumed: resumed, Elapsed: time.Since(start)})
		}
	}
	// Leaf hashes of the current level-0 tile, to compare with the tile,
	// and its entries, checked once it matches (at most 256: constant
	// memory still).
	var tileHashes bytes.Buffer
	var pending []Entry
	for e, err := range l.Entries(ctx, cp, r.End(), workers) {
		if err != nil {
			return fmt.Errorf("audit at entry %d: %w", r.End(), err)
		}
		h, err := l.LeafHash(e)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if err := r.Append(h, nil); err != nil {
			return err
		}
		if e.Index%256 == 0 {
			tileHashes.Reset()
			pending = pending[:0]
		}
		tileHashes.Write(h)
		pending = append(pending, e)
		if (e.Index+1)%256 == 0 || e.Index+1 == cp.Size {
			if err := l.checkTile(ctx, cp, e.Index/256, tileHashes.Bytes()); err != nil {
				return err
			}
			// Entries are judged only once the tree is known to commit
			// to them: a tampered bundle is a tampered bundle, not a bad
			// entry.
			if o.Check != nil {
				for _, e := range pending {
					err := o.Check(e.Index, e.Data)
					switch {
					case err == nil:
					case o.BadEntry != nil && errors.Is(err, ErrBadEntry):
						o.BadEntry(e.Index, err)
						if bad++; bad == 1 {
							firstBad = fmt.Sprintf("entry %d: %v", e.Index, err)
						}
					default:
						return fmt.Errorf("entry %d: %w", e.Index, err)
					}
				}
			}
			if err := save(); err != nil {
				return err
			}
		}
		if time.Since(last) > time.Second {
			last = time.Now()
			report()
		}
	}
	report()
	root, err := r.GetRootHash(nil)
	if err != nil {
		return err
	}
	if cp.Size == 0 {
		root = rfc6962.DefaultHasher.EmptyRoot()
	}
	if !bytes.Equal(root, cp.Hash[:]) {
		return fmt.Errorf("the tree recomputed from the %d entries has root %x, the checkpoint says %x", cp.Size, root, cp.Hash)
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d of %d; the first is %s", ErrBadEntry, bad, cp.Size, firstBad)
	}
	return nil
}

// checkTile compares the level-0 tile n with the leaf hashes of its
// entries (a tile may start before a resumed audit: only the hashes seen
// are compared, right-aligned).
func (l *Log) checkTile(ctx context.Context, cp *policy.Checkpoint, n uint64, hashes []byte) error {
	tile, err := l.Fetch.ReadTile(ctx, 0, n, layout.PartialTileSize(0, n, cp.Size))
	if err != nil {
		return fmt.Errorf("tile 0/%d: %w", n, err)
	}
	width := int(min(uint64(256), cp.Size-n*256)) * 32
	if len(tile) < width {
		return fmt.Errorf("tile 0/%d is %d bytes, want %d", n, len(tile), width)
	}
	tile = tile[:width]
	if !bytes.HasSuffix(tile, hashes) {
		first := n*256 + uint64(width-len(hashes))/32
		for i := 0; i < len(hashes); i += 32 {
			if !bytes.Equal(tile[width-len(hashes)+i:width-len(hashes)+i+32], hashes[i:i+32]) {
				first += uint64(i / 32)
				break
			}
		}
		return fmt.Errorf("entry bundle %d and tile 0/%d disagree from entry %d on: the log serves entries its tree does not commit to, or a tree without its entries", n, n, first)
	}
	return nil
}
