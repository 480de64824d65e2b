package faultfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// compareLimit bounds the files whose bytes diff compares; larger ones are
// compared by size only (Badger's sparse files run to hundreds of MiB).
const compareLimit = 1 << 20

// durablePaths lists the durable tree: relative path to identity.
func (f *FS) durablePaths() map[string]uint64 {
	out := map[string]uint64{}
	seen := map[uint64]bool{}
	var walk func(id uint64, rel string)
	walk = func(id uint64, rel string) {
		d := f.durable[id]
		if d == nil || d.kind != directory || seen[id] {
			return
		}
		seen[id] = true
		for name, cid := range d.entries {
			p := filepath.Join(rel, name)
			out[p] = cid
			walk(cid, p)
		}
	}
	walk(f.rootID, "")
	return out
}

// diff lists how the backing directory differs from the durable state: what
// the cut is about to drop. f.mu must be held.
func (f *FS) diff() ([]string, error) {
	durable := f.durablePaths()
	var report []string
	err := filepath.WalkDir(f.backing, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.backing, path)
		if rel == "." {
			return nil
		}
		id, ok := durable[rel]
		if !ok {
			report = append(report, fmt.Sprintf("%s: entry not durable (its directory was not synced after it was made)", rel))
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		delete(durable, rel)
		d := f.durable[id]
		if !de.Type().IsRegular() || d.kind != regular {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		if live, ok := f.ids[st.Ino]; ok && live != id {
			report = append(report, fmt.Sprintf("%s: replaced, but not durably: the name keeps the file it had (its directory was not synced after the rename)", rel))
			return nil
		}
		if msg, err := f.compareFile(path, id); err != nil {
			return err
		} else if msg != "" {
			report = append(report, rel+": "+msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for rel := range durable {
		report = append(report, fmt.Sprintf("%s: comes back (its removal or rename was not synced)", rel))
	}
	sort.Strings(report)
	return report, nil
}

// compareFile says how the live file at path differs from id's durable data.
func (f *FS) compareFile(path string, id uint64) (string, error) {
	live, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	dur, err := os.Stat(f.shadowPath(id))
	if err != nil {
		return "", err
	}
	if live.Size() != dur.Size() {
		return fmt.Sprintf("data not synced: %d bytes written, %d durable", live.Size(), dur.Size()), nil
	}
	if live.Size() > compareLimit {
		return "", nil
	}
	a, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(f.shadowPath(id))
	if err != nil {
		return "", err
	}
	if !bytes.Equal(a, b) {
		return fmt.Sprintf("data not synced: %d bytes written, other bytes durable", len(a)), nil
	}
	return "", nil
}

// rebuild replaces the backing directory's contents with the durable tree.
// f.mu must be held.
func (f *FS) rebuild() error {
	des, err := os.ReadDir(f.backing)
	if err != nil {
		return err
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(f.backing, de.Name())); err != nil {
			return err
		}
	}
	placed := map[uint64]string{} // identity -> where its first name was made
	var build func(id uint64, path string) error
	build = func(id uint64, path string) error {
		for name, cid := range f.durable[id].entries {
			p := filepath.Join(path, name)
			c := f.durable[cid]
			if prev, ok := placed[cid]; ok {
				if c.kind == directory {
					continue // a directory durable under two names keeps the first
				}
				if err := os.Link(prev, p); err != nil {
					return err
				}
				continue
			}
			placed[cid] = p
			switch c.kind {
			case directory:
				if err := os.Mkdir(p, fs.FileMode(c.mode)|0o700); err != nil {
					return err
				}
				if err := build(cid, p); err != nil {
					return err
				}
			case symlink:
				if err := os.Symlink(c.target, p); err != nil {
					return err
				}
			default:
				if err := os.Rename(f.shadowPath(cid), p); err != nil {
					return err
				}
				if err := os.Chmod(p, fs.FileMode(c.mode)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return build(f.rootID, f.backing)
}

// copySparse copies the file src to a new file dst, keeping holes.
func copySparse(src, dst string) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	fi, err := s.Stat()
	if err != nil {
		return err
	}
	d, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := d.Truncate(fi.Size()); err != nil {
		d.Close()
		return err
	}
	if err := copyRange(s, d, 0, fi.Size()); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// copyRange makes [start, end) of dst equal to src: data is copied, holes
// are punched.
func copyRange(src, dst *os.File, start, end int64) error {
	buf := make([]byte, 256<<10)
	for off := start; off < end; {
		data, err := unix.Seek(int(src.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			data = end // only a hole is left
		} else if err != nil {
			return err
		}
		data = min(data, end)
		if data > off {
			if err := punch(dst, off, data-off); err != nil {
				return err
			}
		}
		if data >= end {
			return nil
		}
		hole, err := unix.Seek(int(src.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, end)
		for p := data; p < hole; {
			n, err := src.ReadAt(buf[:min(int64(len(buf)), hole-p)], p)
			if n > 0 {
				if _, err := dst.WriteAt(buf[:n], p); err != nil {
					return err
				}
				p += int64(n)
			}
			if err == io.EOF {
				return nil // the file shrank while we copied
			} else if err != nil {
				return err
			}
		}
		off = hole
	}
	return nil
}

// punch makes [off, off+n) of f read as zeros.
func punch(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		_, err = f.WriteAt(make([]byte, n), off)
	}
	return err
}
