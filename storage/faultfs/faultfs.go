package faultfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is one mounted faultfs: the FUSE server, and the model of what is
// durable. Mount starts it; Cut or Unmount ends it.
type FS struct {
	backing string // the directory served
	mnt     string // where it is mounted
	shadow  string // durable file data, one file per identity, outside backing
	server  *fuse.Server

	// opMu is held shared by every operation that changes the backing
	// directory or the model, and exclusively by Cut and Unmount, which so
	// wait for the operations under way and turn away all later ones.
	opMu sync.RWMutex
	down bool // guarded by opMu: set by Cut and Unmount

	// mu guards the model: next, ids, files, durable, stats. It is taken
	// inside opMu, never the other way round.
	mu   sync.Mutex
	next uint64
	// ids maps a backing inode number to its identity while that inode
	// lives. An identity outlives its inode: the backing filesystem reuses
	// inode numbers, and an unlinked file may still be durably linked.
	ids map[uint64]uint64
	// files holds, per identity, the changes since its last sync.
	files map[uint64]*liveFile
	// durable is the state a power cut leaves, per identity.
	durable map[uint64]*dnode
	rootID  uint64
	stats   Stats
}

// Stats counts what made data durable during one mount.
type Stats struct {
	FileSyncs  int // fsync and fdatasync of files
	SyncWrites int // writes through descriptors opened O_SYNC or O_DSYNC
	DirSyncs   int // fsync of directories
}

type kind int

const (
	regular kind = iota
	directory
	symlink
)

// dnode is the durable state of one identity.
type dnode struct {
	kind    kind
	mode    uint32            // permission bits
	entries map[string]uint64 // a directory's durable entries
	target  string            // a symlink's target
	// a regular file's data is the shadow file named by its identity
}

// liveFile records what changed in a file since its last sync, so that a
// sync copies only that (Badger maps sparse files of hundreds of MiB).
type liveFile struct {
	dirty   []extent
	minSize int64 // the smallest size set since the last sync; -1 if none
}

type extent struct{ start, end int64 }

// maxExtents bounds a file's dirty list; past it the extents merge into one.
const maxExtents = 256

// Mount serves backing at mountpoint (an existing empty directory). What is
// in backing now counts as durable.
func Mount(backing, mountpoint string) (*FS, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	shadow, err := os.MkdirTemp("", "faultfs-durable-")
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	f := &FS{
		backing: backing, mnt: mountpoint, shadow: shadow,
		ids: map[uint64]uint64{}, files: map[uint64]*liveFile{}, durable: map[uint64]*dnode{},
	}
	if f.rootID, err = f.scan(backing); err != nil {
		os.RemoveAll(shadow)
		return nil, fmt.Errorf("faultfs: reading %s: %w", backing, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		os.RemoveAll(shadow)
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, ffs: f}
	}
	root.RootNode = root.NewNode(root, nil, "", &st)
	f.server, err = fs.Mount(mountpoint, root.RootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName: "faultfs", Name: "faultfs",
			DirectMount: true, DirectMountStrict: true,
			DisableXAttrs: true,
		},
	})
	if err != nil {
		os.RemoveAll(shadow)
		return nil, fmt.Errorf("faultfs: mounting %s: %w", mountpoint, err)
	}
	return f, nil
}

// Stats returns the counts so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Cut is the power cut. Every operation after it fails with EIO, the mount
// goes away, and the backing directory is rewritten to the durable state.
// The processes using the mount should be dead (kill -9 them first): the
// mount lingers until their descriptors are closed, and Cut waits up to ten
// seconds for that. The report lists what the cut dropped, one line each.
func (f *FS) Cut() (report []string, err error) {
	if err := f.stop(); err != nil {
		return nil, err
	}
	defer os.RemoveAll(f.shadow)
	f.mu.Lock()
	defer f.mu.Unlock()
	report, err = f.diff()
	if err != nil {
		return nil, fmt.Errorf("faultfs: comparing %s with its durable state: %w", f.backing, err)
	}
	if err := f.rebuild(); err != nil {
		return report, fmt.Errorf("faultfs: rewriting %s: %w", f.backing, err)
	}
	return report, nil
}

// Unmount ends the mount without a cut: the backing directory keeps
// everything written, as after a clean shutdown and sync.
func (f *FS) Unmount() error {
	defer os.RemoveAll(f.shadow)
	return f.stop()
}

// stop turns operations away, then detaches the mount and waits for the
// server's loops to end (the kernel ends them when the last descriptor on
// the mount is closed).
func (f *FS) stop() error {
	f.opMu.Lock()
	already := f.down
	f.down = true
	f.opMu.Unlock()
	if already {
		return errors.New("faultfs: already cut or unmounted")
	}
	if err := syscall.Unmount(f.mnt, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("faultfs: unmounting %s: %w", f.mnt, err)
	}
	done := make(chan struct{})
	go func() { // ends when the server's loops do, or leaks with the error below
		f.server.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("faultfs: %s is still in use 10 s after unmounting", f.mnt)
	}
}

// enter starts an operation that changes the backing directory; it fails
// after a cut. Each successful enter is paired with a leave.
func (f *FS) enter() bool {
	f.opMu.RLock()
	if f.down {
		f.opMu.RUnlock()
		return false
	}
	return true
}

func (f *FS) leave() { f.opMu.RUnlock() }

// idOf returns the identity of a backing inode, making one for an inode not
// seen before. f.mu must be held.
func (f *FS) idOf(ino uint64) uint64 {
	if id, ok := f.ids[ino]; ok {
		return id
	}
	f.next++
	f.ids[ino] = f.next
	f.files[f.next] = &liveFile{minSize: -1}
	return f.next
}

// live returns the change record of id. f.mu must be held.
func (f *FS) live(id uint64) *liveFile {
	lf := f.files[id]
	if lf == nil {
		lf = &liveFile{minSize: -1}
		f.files[id] = lf
	}
	return lf
}

func (f *FS) shadowPath(id uint64) string {
	return filepath.Join(f.shadow, fmt.Sprint(id))
}

// scan records the tree at path as durable and returns its identity.
func (f *FS) scan(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, err
	}
	id := f.idOf(st.Ino)
	if f.durable[id] != nil { // a hard link to a file already scanned
		return id, nil
	}
	d := &dnode{mode: st.Mode & 0o7777}
	f.durable[id] = d
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		d.kind, d.entries = directory, map[string]uint64{}
		des, err := os.ReadDir(path)
		if err != nil {
			return 0, err
		}
		for _, de := range des {
			cid, err := f.scan(filepath.Join(path, de.Name()))
			if err != nil {
				return 0, err
			}
			d.entries[de.Name()] = cid
		}
	case syscall.S_IFLNK:
		d.kind = symlink
		t, err := os.Readlink(path)
		if err != nil {
			return 0, err
		}
		d.target = t
	case syscall.S_IFREG:
		if err := copySparse(path, f.shadowPath(id)); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%s: faultfs keeps only files, directories and symlinks", path)
	}
	return id, nil
}

// markDirty records that [start, end) of id changed. f.mu must be held.
func (f *FS) markDirty(id uint64, start, end int64) {
	lf := f.live(id)
	lf.dirty = append(lf.dirty, extent{start, end})
	if len(lf.dirty) > maxExtents {
		all := extent{math.MaxInt64, 0}
		for _, e := range lf.dirty {
			all.start, all.end = min(all.start, e.start), max(all.end, e.end)
		}
		lf.dirty = []extent{all}
	}
}

// truncated records a size change of id from old to size. f.mu must be held.
func (f *FS) truncated(id uint64, old, size int64) {
	lf := f.live(id)
	if lf.minSize < 0 || size < lf.minSize {
		lf.minSize = size
	}
	f.markDirty(id, min(old, size), max(old, size))
}

// syncFile makes id's data durable as it is in the open descriptor fd.
// f.mu must be held.
func (f *FS) syncFile(id uint64, fd int) error {
	// Through /proc, so that a descriptor opened write-only can be read.
	src, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	d := f.durable[id]
	if d == nil { // synced before any directory holding it was
		d = &dnode{kind: regular, mode: uint32(fi.Mode().Perm())}
		f.durable[id] = d
	}
	dst, err := os.OpenFile(f.shadowPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	lf := f.live(id)
	if lf.minSize >= 0 {
		if err := dst.Truncate(lf.minSize); err != nil {
			return err
		}
	}
	if err := dst.Truncate(size); err != nil {
		return err
	}
	for _, e := range lf.dirty {
		if err := copyRange(src, dst, max(e.start, 0), min(e.end, size)); err != nil {
			return err
		}
	}
	lf.dirty, lf.minSize = nil, -1
	return nil
}

// syncDir makes the entries of the directory id, at path in the backing
// directory, durable as they are now. f.mu must be held.
func (f *FS) syncDir(id uint64, path string) error {
	des, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	entries := make(map[string]uint64, len(des))
	for _, de := range des {
		p := filepath.Join(path, de.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		cid := f.idOf(st.Ino)
		entries[de.Name()] = cid
		if f.durable[cid] != nil {
			continue
		}
		// A child first made durable by this entry: its own contents are
		// not (a file never synced is empty, a directory never synced
		// has no entries).
		c := &dnode{mode: st.Mode & 0o7777}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			c.kind, c.entries = directory, map[string]uint64{}
		case syscall.S_IFLNK:
			c.kind = symlink
			if c.target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(f.shadowPath(cid), nil, 0o600); err != nil {
				return err
			}
		}
		f.durable[cid] = c
	}
	d := f.durable[id]
	if d == nil {
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		d = &dnode{kind: directory, mode: st.Mode & 0o7777}
		f.durable[id] = d
	}
	d.entries = entries
	return nil
}
