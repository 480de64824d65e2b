package antispam

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/storage/posix"
	tesseraas "github.com/transparency-dev/tessera/storage/posix/antispam"
	"golang.org/x/mod/sumdb/note"
)

const testEntries = 600

// entry is the i-th test entry.
func entry(i int) []byte { return fmt.Appendf(nil, "entry %d", i) }

// identities reads a tlog-tiles bundle's identities as Tessera does.
func identities(bundle []byte) ([][]byte, error) {
	var b api.EntryBundle
	if err := b.UnmarshalText(bundle); err != nil {
		return nil, err
	}
	ids := make([][]byte, len(b.Entries))
	for i, e := range b.Entries {
		ids[i] = tessera.NewEntry(e).Identity()
	}
	return ids, nil
}

// growLog appends testEntries entries to a real posix log in dir, with as
// (if set) as its antispam, and returns its reader. The appender stops at
// the end of the test.
func growLog(t *testing.T, dir string, as tessera.Antispam) tessera.LogReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, "example.test/antispam")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).WithBatching(256, 20*time.Millisecond)
	if as != nil {
		// An in-memory layer of one entry, so that dups reach as.
		opts = opts.WithAntispam(1, as)
	}
	app, shutdown, lr, err := tessera.NewAppender(ctx, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })
	aw := tessera.NewPublicationAwaiter(ctx, lr.ReadCheckpoint, 20*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, testEntries)
	for i := range testEntries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, acancel := context.WithTimeout(ctx, 30*time.Second)
			defer acancel()
			if _, _, err := aw.Await(actx, app.Add(actx, tessera.NewEntry(entry(i)))); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return lr
}

// waitProcessed waits (at most 30 s) until f has indexed n entries.
func waitProcessed(t *testing.T, f tessera.Follower, n uint64) {
	t.Helper()
	for range 300 {
		got, err := f.EntriesProcessed(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if got > n {
			t.Fatalf("processed %d entries, the log has %d", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the follower did not reach %d entries", n)
}

// checkIndexed checks that s maps every test entry to its index.
func checkIndexed(t *testing.T, s *Store, lr tessera.LogReader) {
	t.Helper()
	ctx := context.Background()
	// Entries were added concurrently: read their order from the log.
	want := map[string]uint64{}
	for i := uint64(0); i < testEntries; i += 256 {
		n := min(256, testEntries-i)
		b, err := lr.ReadEntryBundle(ctx, i/256, uint8(n%256))
		if err != nil {
			t.Fatal(err)
		}
		ids, err := identities(b)
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range ids {
			want[string(id)] = i + uint64(j)
		}
	}
	if len(want) != testEntries {
		t.Fatalf("read %d identities from the log, want %d", len(want), testEntries)
	}
	refuse := func(context.Context, *tessera.Entry) tessera.IndexFuture {
		return func() (tessera.Index, error) { return tessera.Index{}, errors.New("added a dup") }
	}
	dec := s.Decorator()(refuse)
	for i := range testEntries {
		e := tessera.NewEntry(entry(i))
		idx, err := dec(ctx, e)()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if w := want[string(e.Identity())]; !idx.IsDup || idx.Index != w {
			t.Fatalf("entry %d: got %+v, want dup at %d", i, idx, w)
		}
	}
	added := false
	add := func(context.Context, *tessera.Entry) tessera.IndexFuture {
		added = true
		return func() (tessera.Index, error) { return tessera.Index{Index: 99}, nil }
	}
	if idx, err := s.Decorator()(add)(ctx, tessera.NewEntry([]byte("new")))(); err != nil || !added || idx.IsDup {
		t.Fatalf("a new entry: %+v, %v, added %v", idx, err, added)
	}
}

func TestFollowsRealLogAndReopens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "as"), Options{Batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	lr := growLog(t, filepath.Join(dir, "log"), s)
	waitProcessed(t, s.Follower(identities), testEntries)
	checkIndexed(t, s, lr)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Lookup([]byte("x")); !errors.Is(err, errClosed) || !errors.Is(err, tessera.ErrPushback) {
		t.Fatalf("lookup after close: %v", err)
	}
	s2, err := Open(filepath.Join(dir, "as"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, _ := s2.Follower(identities).EntriesProcessed(ctx); n != testEntries {
		t.Fatalf("reopened: processed %d, want %d", n, testEntries)
	}
	checkIndexed(t, s2, lr)
}

// gatedReader holds ReadEntryBundle until open is closed.
type gatedReader struct {
	tessera.LogReader
	open chan struct{}
}

func (g gatedReader) ReadEntryBundle(ctx context.Context, i uint64, p uint8) ([]byte, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.LogReader.ReadEntryBundle(ctx, i, p)
}

func TestPushbackWhileBehind(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	lr := growLog(t, filepath.Join(dir, "log"), nil)

	s, err := Open(filepath.Join(dir, "as"), Options{Batch: 50, Pushback: 500, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := s.Follower(identities)
	g := gatedReader{LogReader: lr, open: make(chan struct{})}
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Follow(fctx, g) }()
	defer func() { fcancel(); <-done }()

	add := func(context.Context, *tessera.Entry) tessera.IndexFuture {
		return func() (tessera.Index, error) { return tessera.Index{Index: 1}, nil }
	}
	dec := s.Decorator()(add)
	pushedBack := func() bool {
		_, err := dec(ctx, tessera.NewEntry([]byte("new")))()
		return errors.Is(err, tessera.ErrPushbackAntispam)
	}
	// 600 unindexed entries > 500: pushed back until the follower reads.
	for i := 0; !pushedBack(); i++ {
		if i == 300 {
			t.Fatal("no pushback with 600 unindexed entries")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(g.open)
	waitProcessed(t, f, testEntries)
	if pushedBack() {
		t.Fatal("still pushing back after the follower caught up")
	}
	checkIndexed(t, s, lr)
}

// TestOpensTesseraStore opens the directory of Tessera's own Badger store as
// a kill -9 leaves it (copied while that store runs, which never closes).
func TestOpensTesseraStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	old, err := tesseraas.NewAntispam(ctx, filepath.Join(dir, "old"), tesseraas.AntispamOpts{})
	if err != nil {
		t.Fatal(err)
	}
	lr := growLog(t, filepath.Join(dir, "log"), old)
	waitProcessed(t, old.Follower(identities), testEntries)
	// Tessera's follower now sleeps (1 s ticks) with nothing to write.
	copyDir(t, filepath.Join(dir, "old"), filepath.Join(dir, "copy"))

	s, err := Open(filepath.Join(dir, "copy"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.Follower(identities).EntriesProcessed(ctx); n != testEntries {
		t.Fatalf("processed %d, want %d", n, testEntries)
	}
	checkIndexed(t, s, lr)
}

// copyDir copies a Badger directory; cp keeps its sparse files (a
// memtable log and value log are mostly holes) sparse.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", "--sparse=always", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if err := os.Remove(filepath.Join(to, "LOCK")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestRebuildsAfterLostTable: a table file that a power cut lost (Badger
// does not sync the directory after a memtable flush) makes the store
// start afresh and index the whole log again.
func TestRebuildsAfterLostTable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	asDir := filepath.Join(dir, "as")
	s, err := Open(asDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lr := growLog(t, filepath.Join(dir, "log"), s)
	waitProcessed(t, s.Follower(identities), testEntries)
	// Close flushes the memtable to a table file; lose it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, err := filepath.Glob(filepath.Join(asDir, "*.sst"))
	if err != nil || len(ssts) == 0 {
		t.Fatalf("no table file after close (%v)", err)
	}
	for _, f := range ssts {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}

	s2, err := Open(asDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	f := s2.Follower(identities)
	if n, _ := f.EntriesProcessed(ctx); n != 0 {
		t.Fatalf("a rebuilt store starts at %d entries, want 0", n)
	}
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Follow(fctx, lr) }()
	defer func() { fcancel(); <-done }()
	waitProcessed(t, f, testEntries)
	checkIndexed(t, s2, lr)
}

// TestBadgerLogsThroughSlog: Badger's messages, the multi-line level
// summary of Close included, are slog records (lib=badger), never raw
// lines on stderr; its info chatter is at debug.
func TestBadgerLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	saved := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(saved)
	s, err := Open(filepath.Join(t.TempDir(), "as"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var summary bool
	for _, l := range lines {
		var r struct{ Level, Msg, Lib string }
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Lib != "badger" {
			t.Fatalf("not a badger slog record: %q (%v)", l, err)
		}
		if r.Level == "INFO" {
			t.Errorf("Badger's info at info: %q", l)
		}
		summary = summary || strings.Contains(r.Msg, "Level Done")
	}
	if !summary {
		t.Errorf("Close's level summary is not among Badger's records:\n%s", buf.String())
	}
}
