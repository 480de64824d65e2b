package faultfs

import (
	"context"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is go-fuse's loopback node, with every operation that changes the
// backing directory reported to the model.
type node struct {
	fs.LoopbackNode
	ffs *FS
}

var (
	_ fs.NodeCreater         = (*node)(nil)
	_ fs.NodeOpener          = (*node)(nil)
	_ fs.NodeMkdirer         = (*node)(nil)
	_ fs.NodeMknoder         = (*node)(nil)
	_ fs.NodeSymlinker       = (*node)(nil)
	_ fs.NodeLinker          = (*node)(nil)
	_ fs.NodeUnlinker        = (*node)(nil)
	_ fs.NodeRmdirer         = (*node)(nil)
	_ fs.NodeRenamer         = (*node)(nil)
	_ fs.NodeSetattrer       = (*node)(nil)
	_ fs.NodeOpendirHandler  = (*node)(nil)
	_ fs.NodeTmpfiler        = (*node)(nil)
	_ fs.NodeCopyFileRanger  = (*node)(nil)
	_ fs.FileWriter          = (*file)(nil)
	_ fs.FileWritever        = (*file)(nil)
	_ fs.FileFsyncer         = (*file)(nil)
	_ fs.FileAllocater       = (*file)(nil)
	_ fs.FilePassthroughFder = (*file)(nil)
	_ fs.FileFsyncdirer      = (*dir)(nil)
)

// bpath is the node's path in the backing directory.
func (n *node) bpath() string { return filepath.Join(n.ffs.backing, n.Path(nil)) }

// lstat reads the backing inode of a child, or of n itself for "".
func (n *node) lstat(name string) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	err := syscall.Lstat(filepath.Join(n.bpath(), name), &st)
	return st, err
}

// register gives a new child its identity.
func (n *node) register(name string) {
	if st, err := n.lstat(name); err == nil {
		n.ffs.mu.Lock()
		n.ffs.idOf(st.Ino)
		n.ffs.mu.Unlock()
	}
}

// forgetIfLast forgets the inode st once its last name is gone: the backing
// filesystem may then give its number to a new file.
func (n *node) forgetIfLast(st syscall.Stat_t) {
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR || st.Nlink <= 1 {
		n.ffs.mu.Lock()
		delete(n.ffs.ids, st.Ino)
		n.ffs.mu.Unlock()
	}
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, nil, 0, syscall.EIO
	}
	defer n.ffs.leave()
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return ch, fh, ff, errno
	}
	f, errno := n.ffs.wrap(fh, flags)
	return ch, f, ff, errno
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, 0, syscall.EIO
	}
	defer n.ffs.leave()
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return fh, ff, errno
	}
	f, errno := n.ffs.wrap(fh, flags)
	return f, ff, errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, syscall.EIO
	}
	defer n.ffs.leave()
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.register(name)
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, syscall.EIO
	}
	defer n.ffs.leave()
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, dev, out)
	if errno == 0 {
		n.register(name)
	}
	return ch, errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, syscall.EIO
	}
	defer n.ffs.leave()
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		n.register(name)
	}
	return ch, errno
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.ffs.enter() {
		return nil, syscall.EIO
	}
	defer n.ffs.leave()
	return n.LoopbackNode.Link(ctx, target, name, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if !n.ffs.enter() {
		return syscall.EIO
	}
	defer n.ffs.leave()
	st, err := n.lstat(name)
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 && err == nil {
		n.forgetIfLast(st)
	}
	return errno
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if !n.ffs.enter() {
		return syscall.EIO
	}
	defer n.ffs.leave()
	st, err := n.lstat(name)
	errno := n.LoopbackNode.Rmdir(ctx, name)
	if errno == 0 && err == nil {
		n.forgetIfLast(st)
	}
	return errno
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if !n.ffs.enter() {
		return syscall.EIO
	}
	defer n.ffs.leave()
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	st, err := np.lstat(newName) // the entry a rename replaces
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	const renameExchange = 1 << 1
	if errno == 0 && err == nil && flags&renameExchange == 0 {
		np.forgetIfLast(st)
	}
	return errno
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if !n.ffs.enter() {
		return syscall.EIO
	}
	defer n.ffs.leave()
	size, resize := in.GetSize()
	if !resize {
		return n.LoopbackNode.Setattr(ctx, fh, in, out)
	}
	// Through the open file if there is one: its name may be gone.
	var st syscall.Stat_t
	var err error
	f, open := fh.(*file)
	if open {
		err = syscall.Fstat(f.fd, &st)
	} else {
		st, err = n.lstat("")
	}
	if err != nil {
		return fs.ToErrno(err)
	}
	errno := n.LoopbackNode.Setattr(ctx, fh, in, out)
	if errno == 0 {
		n.ffs.mu.Lock()
		id := n.ffs.idOf(st.Ino)
		if open {
			id = f.id
		}
		n.ffs.truncated(id, st.Size, int64(size))
		n.ffs.mu.Unlock()
	}
	return errno
}

// Tmpfile is refused: a file without a name would need its own model.
func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// CopyFileRange is refused (ENOSYS: the kernel then copies through reads
// and writes, which the model sees).
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return fh, ff, errno
	}
	return &dir{FileHandle: fh, n: n}, ff, 0
}

// dir is an open directory; its fsync makes its entries durable.
type dir struct {
	fs.FileHandle // go-fuse's loopback directory stream
	n             *node
}

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.FileHandle.(fs.FileReaddirenter).Readdirent(ctx)
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.FileHandle.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (d *dir) Releasedir(ctx context.Context, flags uint32) {
	d.FileHandle.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	f := d.n.ffs
	if !f.enter() {
		return syscall.EIO
	}
	defer f.leave()
	st, err := d.n.lstat("")
	if err != nil {
		return fs.ToErrno(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.DirSyncs++
	return fs.ToErrno(f.syncDir(f.idOf(st.Ino), d.n.bpath()))
}

// file is an open regular file. It keeps the identity it was opened with,
// so that a sync after the name was removed reaches the right data.
type file struct {
	*fs.LoopbackFile
	ffs   *FS
	id    uint64
	fd    int
	dsync bool // opened O_SYNC or O_DSYNC: each write is durable
}

// wrap makes the file handle of a Create or Open.
func (f *FS) wrap(fh fs.FileHandle, flags uint32) (fs.FileHandle, syscall.Errno) {
	lf := fh.(*fs.LoopbackFile)
	fd, _ := lf.PassthroughFd()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		lf.Release(context.Background())
		return nil, fs.ToErrno(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.idOf(st.Ino)
	if flags&syscall.O_TRUNC != 0 {
		// The size before is unknown here; mark the whole old range.
		f.truncated(id, math64, 0)
	}
	return &file{LoopbackFile: lf, ffs: f, id: id, fd: fd, dsync: flags&syscall.O_DSYNC != 0}, 0
}

// math64 stands for "to the end of the file" in an extent.
const math64 = 1<<63 - 1

// PassthroughFd keeps the kernel from writing to the backing file directly,
// around the model.
func (f *file) PassthroughFd() (int, bool) { return -1, false }

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !f.ffs.enter() {
		return 0, syscall.EIO
	}
	defer f.ffs.leave()
	n, errno := f.LoopbackFile.Write(ctx, data, off)
	return n, f.wrote(off, int64(n), errno)
}

func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if !f.ffs.enter() {
		return 0, syscall.EIO
	}
	defer f.ffs.leave()
	n, errno := f.LoopbackFile.Writev(ctx, data, off)
	return n, f.wrote(off, int64(n), errno)
}

// wrote records a write of n bytes at off, durable at once for O_DSYNC.
func (f *file) wrote(off, n int64, errno syscall.Errno) syscall.Errno {
	if n <= 0 {
		return errno
	}
	f.ffs.mu.Lock()
	defer f.ffs.mu.Unlock()
	f.ffs.markDirty(f.id, off, off+n)
	if f.dsync {
		f.ffs.stats.SyncWrites++
		if err := f.ffs.syncFile(f.id, f.fd); err != nil {
			return fs.ToErrno(err)
		}
	}
	return errno
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if !f.ffs.enter() {
		return syscall.EIO
	}
	defer f.ffs.leave()
	errno := f.LoopbackFile.Allocate(ctx, off, size, mode)
	if errno == 0 {
		f.ffs.mu.Lock()
		f.ffs.markDirty(f.id, int64(off), int64(off+size))
		f.ffs.mu.Unlock()
	}
	return errno
}

// Fsync makes the data durable in the model. It does not fsync the backing
// file: the backing directory's own durability is not under test.
func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !f.ffs.enter() {
		return syscall.EIO
	}
	defer f.ffs.leave()
	f.ffs.mu.Lock()
	defer f.ffs.mu.Unlock()
	f.ffs.stats.FileSyncs++
	return fs.ToErrno(f.ffs.syncFile(f.id, f.fd))
}
