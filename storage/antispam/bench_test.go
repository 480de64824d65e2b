package antispam

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	tesseraas "github.com/transparency-dev/tessera/storage/posix/antispam"
	"golang.org/x/mod/sumdb/note"
)

// benchEntries is the log a follower benchmark indexes.
const benchEntries = 100_000

// benchLog grows a posix log of benchEntries entries of 300 bytes (about
// a vetting leaf) without antispam, and returns its reader.
func benchLog(b *testing.B, dir string) tessera.LogReader {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	d, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		b.Fatal(err)
	}
	skey, _, _ := note.GenerateKey(rand.Reader, "example.test/bench")
	signer, _ := note.NewSigner(skey)
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).WithBatching(tessera.DefaultBatchMaxSize, 20*time.Millisecond).
		WithPushback(benchEntries)
	app, shutdown, lr, err := tessera.NewAppender(ctx, d, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(context.Background()) })
	var last tessera.IndexFuture
	for range benchEntries {
		e := make([]byte, 300)
		rand.Read(e[:32])
		last = app.Add(ctx, tessera.NewEntry(e))
	}
	aw := tessera.NewPublicationAwaiter(ctx, lr.ReadCheckpoint, 50*time.Millisecond)
	if _, _, err := aw.Await(ctx, last); err != nil {
		b.Fatal(err)
	}
	return lr
}

// benchFollow times a fresh store's follower indexing the whole log and
// reports entries/s.
func benchFollow(b *testing.B, open func(b *testing.B, dir string) tessera.Antispam) {
	dir := b.TempDir()
	lr := benchLog(b, filepath.Join(dir, "log"))
	b.ResetTimer()
	for i := range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		as := open(b, filepath.Join(dir, "as", string(rune('a'+i))))
		f := as.Follower(identities)
		start := time.Now()
		go f.Follow(ctx, lr)
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			n, err := f.EntriesProcessed(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == benchEntries {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("indexed %d of %d entries in 5 min", n, benchEntries)
			}
		}
		b.ReportMetric(benchEntries/time.Since(start).Seconds(), "entries/s")
		cancel()
	}
}

// BenchmarkFollow: go test -run '^$' -bench Follow -benchtime 1x ./storage/antispam
func BenchmarkFollow(b *testing.B) {
	benchFollow(b, func(b *testing.B, dir string) tessera.Antispam {
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkFollowTessera is Tessera v1.0.4's Badger store, for comparison
// (its follower wakes once a second, then works until it has caught up).
func BenchmarkFollowTessera(b *testing.B) {
	benchFollow(b, func(b *testing.B, dir string) tessera.Antispam {
		s, err := tesseraas.NewAntispam(context.Background(), dir, tesseraas.AntispamOpts{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
