package log

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/storage/posix"
	"github.com/vesperlog/vesperlog/storage/antispam"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
)

// TestDedupAfterRestartBehind restarts a log whose dedup store is behind
// the tree (here: lost, so its follower replays the whole log, as after a
// crash that lost the in-memory dedup and the follower's last second).
// A duplicate submitted at once must be pushed back or found, never
// logged again.
func TestDedupAfterRestartBehind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	skey, _, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	open := func(antispamDir string) *Log {
		d, err := posix.New(ctx, posix.Config{Path: filepath.Join(dir, "log")})
		if err != nil {
			t.Fatal(err)
		}
		as, err := antispam.Open(filepath.Join(dir, antispamDir), antispam.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { as.Close() })
		l, err := Open(ctx, d, Options{
			Signer: signer,
			// The identity is the first 4 bytes.
			Format: TlogTiles(func(e []byte) ([]byte, error) {
				if len(e) < 4 {
					return nil, errors.New("short entry")
				}
				return e[:4], nil
			}),
			Antispam:           as,
			CheckpointInterval: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	entry := func(i uint32) []byte { return binary.BigEndian.AppendUint32(nil, i) }

	const n = 2000
	l := open("antispam-1")
	var wg sync.WaitGroup
	for i := range uint32(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, _, err := l.Add(ctx, append(entry(i), 'a')); err != nil {
				t.Errorf("Add %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	last, _, _, err := l.Add(ctx, append(entry(n-1), 'a'))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	l = open("antispam-2")
	defer l.Close(ctx)
	pushedBack := 0
	for i := 0; ; i++ {
		idx, dup, _, err := l.Add(ctx, append(entry(n-1), 'b'))
		if errors.Is(err, problem.ErrOverloaded) && i < 1000 {
			pushedBack++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !dup || idx != last {
			t.Fatalf("the duplicate was logged again at %d (first at %d)", idx, last)
		}
		break
	}
	t.Logf("pushed back %d times while the dedup store caught up", pushedBack)
}
