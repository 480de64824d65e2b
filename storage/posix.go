package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/vesperlog/vesperlog/storage/antispam"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// posixBackend keeps everything in one directory, which it holds locked
// from Open to Close.
type posixBackend struct {
	dir           string
	lock          *os.File // the directory's lock; closing it releases the lock
	witnessClient *http.Client
	// names serialise the writes of one state document (Put, Create,
	// Swap, Delete), striped by its name: the directory lock keeps other
	// processes out, these the goroutines of this one. Writes of other
	// documents (idempotency records) go on at once, each waiting for
	// its own fsync.
	names [64]sync.Mutex

	// mu guards stores, the dedup stores opened, which Close closes.
	mu     sync.Mutex
	stores []*antispam.Store
}

func openPOSIX(c Config) (*posixBackend, error) {
	if c.Dir == "" {
		return nil, errMissing(POSIX, "a data directory (-data)")
	}
	lock, err := keys.LockDir(c.Dir, 0o755)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := checkFreeSpace(c.Dir); err != nil {
		lock.Close()
		return nil, err
	}
	return &posixBackend{dir: c.Dir, lock: lock, witnessClient: c.WitnessClient}, nil
}

func (b *posixBackend) Name() string { return POSIX }

// Close closes the dedup stores (after the logs they serve: see
// antispam.Open) and releases the directory's lock.
func (b *posixBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range b.stores {
		errs = append(errs, s.Close())
	}
	b.stores = nil
	return errors.Join(append(errs, b.lock.Close())...)
}

func (b *posixBackend) Log(ctx context.Context, name string) (*Stores, error) {
	if err := checkName("log", name); err != nil {
		return nil, err
	}
	logDir := filepath.Join(b.dir, name)
	if err := keys.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", logDir, err)
	}
	d, err := posix.New(ctx, posix.Config{Path: logDir, HTTPClient: b.witnessClient})
	if err != nil {
		return nil, fmt.Errorf("opening posix log in %s: %w", logDir, err)
	}
	as, err := b.badger(name+"-antispam", antispam.Options{})
	if err != nil {
		return nil, err
	}
	return &Stores{Driver: d, Antispam: as}, nil
}

func (b *posixBackend) Index(ctx context.Context, name, index string) (tessera.Antispam, error) {
	if err := errors.Join(checkName("log", name), checkName("index", index)); err != nil {
		return nil, err
	}
	// An index pushes back only its own lookups (log.Index), not adds:
	// keep Tessera's threshold, so that a lagging index answers 503
	// rather than "not found" for entries it has not reached.
	return b.badger(name+"-"+index, antispam.Options{Pushback: 2048})
}

// badger opens a Badger antispam store (package antispam, with bounded
// memory; it opens the directories of Tessera's own Badger store too) in
// the named subdirectory. Close closes it.
func (b *posixBackend) badger(sub string, o antispam.Options) (tessera.Antispam, error) {
	dir := filepath.Join(b.dir, sub)
	// Badger makes its directory without syncing the parent.
	if err := keys.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := removeEmptyWALs(dir); err != nil {
		return nil, err
	}
	as, err := antispam.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("opening antispam store in %s: %w", dir, err)
	}
	b.mu.Lock()
	b.stores = append(b.stores, as)
	b.mu.Unlock()
	return as, nil
}

// removeEmptyWALs removes the empty memtable logs (*.mem) of the Badger
// store in dir. Badger makes a memtable log by creating it and extending it
// (ftruncate) without fsync, so a power cut can leave it empty, and Badger
// v4.9.1 then refuses to open the store ("while opening memtables ... Create
// a new file": memtable.go:75 takes openMemTable's z.NewFile for an error).
// An empty log holds no entry, so removing it loses nothing.
func removeEmptyWALs(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".mem") {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if fi, err := de.Info(); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
			continue
		}
		slog.Warn("removing an empty Badger memtable log, left by a crash", "file", p)
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("removing empty %s: %w", p, err)
		}
	}
	return nil
}

func (b *posixBackend) Objects(name string) Objects {
	return posixObjects{dir: filepath.Join(b.dir, name)}
}

func (b *posixBackend) State() State { return (*posixState)(b) }

// posixObjects are files below a log's directory, beside its tiles.
type posixObjects struct{ dir string }

func (o posixObjects) path(p string) (string, error) {
	if !fs.ValidPath(p) || strings.Contains(p, `\`) {
		return "", fmt.Errorf("storage: bad object path %q", p)
	}
	return filepath.Join(o.dir, filepath.FromSlash(p)), nil
}

func (o posixObjects) Put(_ context.Context, p string, data []byte, _ string) error {
	path, err := o.path(p)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return nil // immutable: the first copy stands
	}
	// Atomic: a reader sees the whole object or none.
	return keys.WriteFile(path, data, 0o644)
}

func (o posixObjects) Get(_ context.Context, p string) ([]byte, error) {
	path, err := o.path(p)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading object %s: %w", p, err)
	}
	return b, nil
}

// posixState keeps each document as a file in the data directory.
type posixState posixBackend

func (s *posixState) path(name string) (string, error) {
	parts := strings.Split(name, "/")
	bad := !fs.ValidPath(name) || strings.Contains(name, `\`) || len(parts) > 2
	for _, p := range parts {
		bad = bad || strings.HasPrefix(p, ".")
	}
	if bad {
		return "", fmt.Errorf("storage: bad state name %q", name)
	}
	return filepath.Join(s.dir, filepath.FromSlash(name)), nil
}

// stripe locks and returns the mutex of name's stripe.
func (s *posixState) stripe(name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(name))
	mu := &s.names[h.Sum32()%uint32(len(s.names))]
	mu.Lock()
	return mu
}

func (s *posixState) Get(_ context.Context, name string) ([]byte, error) {
	path, err := s.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// Version is the file's inode, size, and modification and change times: a
// Put renames a new file into place (a new inode), and an edit in place
// moves the times. Two edits in place within one clock tick, of the same
// size, look alike; readers still read the document again at least every
// state.ReloadEvery.
func (s *posixState) Version(_ context.Context, name string) (string, error) {
	path, err := s.path(name)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", fmt.Errorf("reading %s: no inode", path)
	}
	// Without fmt: every submission asks (log/state.Agents).
	var b [6 * 21]byte
	v := strconv.AppendUint(b[:0], st.Ino, 10)
	for i, n := range []int64{st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec} {
		v = append(v, "::.:."[i])
		v = strconv.AppendInt(v, n, 10)
	}
	return string(v), nil
}

func (s *posixState) Put(_ context.Context, name string, value []byte) error {
	path, err := s.path(name)
	if err != nil {
		return err
	}
	mu := s.stripe(name)
	defer mu.Unlock()
	return keys.WriteFile(path, value, 0o644)
}

func (s *posixState) Create(ctx context.Context, name string, value []byte) (bool, error) {
	return s.Swap(ctx, name, nil, value)
}

// holds says whether the file at path holds old (nil: is absent).
func holds(path string, old []byte) (bool, error) {
	cur, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return old == nil, nil
	case err != nil:
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return old != nil && bytes.Equal(cur, old), nil
}

func (s *posixState) Swap(ctx context.Context, name string, old, value []byte) (bool, error) {
	path, err := s.path(name)
	if err != nil {
		return false, err
	}
	mu := s.stripe(name)
	defer mu.Unlock()
	if ok, err := holds(path, old); !ok || err != nil {
		return false, err
	}
	if err := keys.WriteFile(path, value, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

func (s *posixState) Delete(_ context.Context, name string, old []byte) (bool, error) {
	path, err := s.path(name)
	if err != nil {
		return false, err
	}
	mu := s.stripe(name)
	defer mu.Unlock()
	if ok, err := holds(path, old); old == nil || !ok || err != nil {
		return false, err
	}
	if err := keys.Remove(path); err != nil {
		return false, fmt.Errorf("deleting %s: %w", path, err)
	}
	return true, nil
}

func (s *posixState) List(_ context.Context, prefix, after string, n int) ([]string, error) {
	// Names are files of the data directory or of one subdirectory: read
	// the directory prefix names, then filter on the rest.
	dir, base := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, base = prefix[:i+1], prefix[i+1:]
	}
	if dir != "" {
		if _, err := s.path(dir + "x"); err != nil {
			return nil, err
		}
	}
	des, err := os.ReadDir(filepath.Join(s.dir, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing state %s: %w", prefix, err)
	}
	var names []string
	for _, de := range des { // ReadDir sorts by name
		name := dir + de.Name()
		if len(names) == n {
			break
		}
		if de.Type().IsRegular() && !strings.HasPrefix(de.Name(), ".") && strings.HasPrefix(de.Name(), base) && name > after {
			names = append(names, name)
		}
	}
	return names, nil
}
