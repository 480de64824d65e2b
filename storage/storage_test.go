package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/storage/antispam"
	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// backends opens each backend that runs here, fresh for t.
func backends(t *testing.T) map[string]func(t *testing.T) Backend {
	return map[string]func(t *testing.T) Backend{
		POSIX: func(t *testing.T) Backend {
			return mustOpen(t, Config{Dir: t.TempDir()})
		},
		AWS: func(t *testing.T) Backend {
			a := storagetest.NewAWS(t)
			return mustOpen(t, Config{Backend: AWS, DSN: a.DSN, Bucket: a.Bucket, S3Endpoint: a.Endpoint})
		},
	}
}

func mustOpen(t *testing.T, c Config) Backend {
	t.Helper()
	b, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestState(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			if _, err := st.Get(ctx, "doc.json"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("missing document: %v", err)
			}
			steps := []struct {
				what     string
				do       func() (bool, error)
				want     bool
				wantDocs string
			}{
				{"create", func() (bool, error) { return st.Create(ctx, "doc.json", []byte("a")) }, true, "a"},
				{"create again", func() (bool, error) { return st.Create(ctx, "doc.json", []byte("b")) }, false, "a"},
				{"swap from a stale value", func() (bool, error) { return st.Swap(ctx, "doc.json", []byte("x"), []byte("c")) }, false, "a"},
				{"swap from absent", func() (bool, error) { return st.Swap(ctx, "doc.json", nil, []byte("c")) }, false, "a"},
				{"swap", func() (bool, error) { return st.Swap(ctx, "doc.json", []byte("a"), []byte("c")) }, true, "c"},
				{"swap to the same value", func() (bool, error) { return st.Swap(ctx, "doc.json", []byte("c"), []byte("c")) }, true, "c"},
				{"put", func() (bool, error) { return true, st.Put(ctx, "doc.json", []byte("d")) }, true, "d"},
			}
			for _, s := range steps {
				got, err := s.do()
				if err != nil || got != s.want {
					t.Fatalf("%s: %v, %v; want %v", s.what, got, err, s.want)
				}
				b, err := st.Get(ctx, "doc.json")
				if err != nil || string(b) != s.wantDocs {
					t.Fatalf("%s: document is %q, %v; want %q", s.what, b, err, s.wantDocs)
				}
			}
			if _, err := st.Swap(ctx, "other.json", []byte("a"), []byte("b")); err != nil {
				t.Fatalf("swap of a missing document: %v", err)
			}
		})
	}
}

// TestStateDeleteAndList: Delete removes a document only if it still
// holds what the caller read; List pages through one directory's names in
// order.
func TestStateDeleteAndList(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			for _, n := range []string{"dir/c", "dir/a", "dir/b", "dir/d", "dirx/a", "top.json"} {
				if ok, err := st.Create(ctx, n, []byte(n)); err != nil || !ok {
					t.Fatalf("create %s: %v, %v", n, ok, err)
				}
			}
			for _, c := range []struct {
				prefix, after string
				n             int
				want          string
			}{
				{"dir/", "", 10, "dir/a dir/b dir/c dir/d"},
				{"dir/", "", 2, "dir/a dir/b"},
				{"dir/", "dir/b", 2, "dir/c dir/d"},
				{"dir/", "dir/d", 2, ""},
				{"dir/b", "", 10, "dir/b"},
				{"nothing/", "", 10, ""},
			} {
				got, err := st.List(ctx, c.prefix, c.after, c.n)
				if err != nil || strings.Join(got, " ") != c.want {
					t.Errorf("List(%q, %q, %d) = %q, %v; want %q", c.prefix, c.after, c.n, got, err, c.want)
				}
			}
			steps := []struct {
				what string
				old  string
				want bool
			}{
				{"delete from a stale value", "x", false},
				{"delete", "dir/b", true},
				{"delete again", "dir/b", false},
			}
			for _, s := range steps {
				if ok, err := st.Delete(ctx, "dir/b", []byte(s.old)); err != nil || ok != s.want {
					t.Fatalf("%s: %v, %v; want %v", s.what, ok, err, s.want)
				}
			}
			if _, err := st.Get(ctx, "dir/b"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("deleted document: %v", err)
			}
			if got, err := st.List(ctx, "dir/", "", 10); err != nil || strings.Join(got, " ") != "dir/a dir/c dir/d" {
				t.Fatalf("after delete: %q, %v", got, err)
			}
			// A deleted name can be created again: Create-if-absent is the
			// in-flight marker of an expired idempotency record.
			if ok, err := st.Create(ctx, "dir/b", []byte("again")); err != nil || !ok {
				t.Fatalf("create after delete: %v, %v", ok, err)
			}
		})
	}
}

// TestStateCreateRace: of writers racing to create, exactly one wins.
func TestStateCreateRace(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			var mu sync.Mutex
			wins := 0
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, err := st.Create(ctx, "race.json", []byte{byte('a' + i)})
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("%d creators won", wins)
			}
		})
	}
}

func TestObjects(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			o := open(t).Objects("stict")
			if _, err := o.Get(ctx, "issuer/00"); !errors.Is(err, ErrNotExist) {
				t.Fatalf("missing object: %v", err)
			}
			if err := o.Put(ctx, "issuer/ab", []byte("der"), "application/pkix-cert"); err != nil {
				t.Fatal(err)
			}
			if b, err := o.Get(ctx, "issuer/ab"); err != nil || string(b) != "der" {
				t.Fatalf("Get: %q, %v", b, err)
			}
		})
	}
}

func TestLogStores(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			st, err := b.Log(ctx, "vetting")
			if err != nil {
				t.Fatal(err)
			}
			if st.Driver == nil || st.Antispam == nil {
				t.Fatalf("incomplete stores: %+v", st)
			}
			if (st.Claims != nil) != (name == AWS) {
				t.Fatalf("claims %v on %s", st.Claims, name)
			}
			if _, err := b.Index(ctx, "stict", "leafhash"); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"", "Vetting", "a/b", "x;drop", strings.Repeat("a", 17)} {
				if _, err := b.Log(ctx, bad); err == nil {
					t.Errorf("log name %q accepted", bad)
				}
			}
		})
	}
}

func TestPOSIXLock(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, Config{Dir: dir})
	if _, err := Open(context.Background(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of one directory: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		c    Config
		want string
	}{
		{Config{Backend: "s3"}, "want posix, aws or gcp"},
		{Config{}, "needs a data directory"},
		{Config{Backend: AWS, Bucket: "b"}, "needs a MySQL DSN"},
		{Config{Backend: AWS, DSN: "u:p@tcp(127.0.0.1:1)/v"}, "needs an S3 bucket"},
		{Config{Backend: AWS, DSN: "u:p@tcp(127.0.0.1:1)/", Bucket: "b"}, "must name a database"},
		{Config{Backend: AWS, DSN: "u:p@tcp(127.0.0.1:1)/v-x", Bucket: "b"}, "must name a database"},
		{Config{Backend: GCP, Bucket: "b"}, "needs a Spanner database"},
		{Config{Backend: GCP, Spanner: "projects/p/instances/i/databases/d"}, "needs a GCS bucket"},
		{Config{Backend: GCP, Spanner: "d", Bucket: "b"}, "is not projects/P/instances/I/databases/D"},
	} {
		_, err := Open(context.Background(), c.c)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.c, err, c.want)
		}
	}
}

// TestClaims: a second process's claim of a claimed identity waits for the
// first's index; a released claim goes to the next claimer; a stale one is
// taken over.
func TestClaims(t *testing.T) {
	a := storagetest.NewAWS(t)
	ctx := context.Background()
	open := func() Claims {
		b := mustOpen(t, Config{Backend: AWS, DSN: a.DSN, Bucket: a.Bucket, S3Endpoint: a.Endpoint})
		st, err := b.Log(ctx, "vetting")
		if err != nil {
			t.Fatal(err)
		}
		return st.Claims
	}
	one, two := open(), open() // two front ends
	id := []byte("identity-1")
	if _, logged, err := one.Claim(ctx, id); err != nil || logged {
		t.Fatalf("first claim: %v, %v", logged, err)
	}
	got := make(chan uint64, 1)
	go func() {
		idx, logged, err := two.Claim(ctx, id)
		if err != nil || !logged {
			t.Errorf("second claim: %v, %v", logged, err)
		}
		got <- idx
	}()
	select {
	case <-got:
		t.Fatal("second claim did not wait for the first")
	case <-time.After(200 * time.Millisecond):
	}
	if err := one.Settle(ctx, id, 42); err != nil {
		t.Fatal(err)
	}
	if idx := <-got; idx != 42 {
		t.Fatalf("second claim got index %d, want 42", idx)
	}

	id2 := []byte("identity-2")
	if _, _, err := one.Claim(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if err := one.Release(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, logged, err := two.Claim(ctx, id2); err != nil || logged {
		t.Fatalf("claim after release: %v, %v", logged, err)
	}

	// A claim whose holder stalls goes stale and is taken over; the
	// stalled holder's release then leaves the new holder's claim alone.
	one.(*sqlClaims).stale, two.(*sqlClaims).stale = 50*time.Millisecond, 50*time.Millisecond
	id3 := []byte("identity-3")
	if _, _, err := one.Claim(ctx, id3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, logged, err := two.Claim(ctx, id3); err != nil || logged {
		t.Fatalf("taking over a stale claim: %v, %v", logged, err)
	}
	if err := one.Release(ctx, id3); err != nil {
		t.Fatal(err)
	}
	if err := two.Settle(ctx, id3, 7); err != nil {
		t.Fatal(err)
	}
	if idx, logged, err := one.Claim(ctx, id3); err != nil || !logged || idx != 7 {
		t.Fatalf("after a stale holder's release: %d, %v, %v; want the new holder's index 7", idx, logged, err)
	}

	if err := two.Forget(ctx, 43); err != nil {
		t.Fatal(err)
	}
	if _, logged, err := one.Claim(ctx, id); err != nil || logged {
		t.Fatalf("claim after forget: %v, %v (the antispam store answers for forgotten claims)", logged, err)
	}
}

// TestPOSIXEmptyMemtableLog: a power cut can leave a Badger memtable log
// empty (made and extended, never synced; storage/faultfs shows it), which
// Badger refuses to open. The store opens, and the empty log is gone.
func TestPOSIXEmptyMemtableLog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "stict-leafhash")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "00001.mem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, Config{Dir: dir})
	if _, err := b.Index(ctx, "stict", "leafhash"); err != nil {
		t.Fatalf("opening a store with an empty memtable log: %v", err)
	}
}

// TestPOSIXDedupStoreOutlivesCtx: a posix dedup store stays open when the
// context it was opened under ends (a server's signal context ends at
// SIGTERM, before Tessera's Shutdown waits for the follower to index the
// last entries: closing the store then stalled every stop for its full
// timeout), and closes with the backend.
func TestPOSIXDedupStoreOutlivesCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b, err := Open(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Log(ctx, "vetting")
	if err != nil {
		t.Fatal(err)
	}
	as := s.Antispam.(*antispam.Store)
	cancel()
	time.Sleep(50 * time.Millisecond)
	if _, _, err := as.Lookup([]byte("id")); err != nil {
		t.Fatalf("lookup after the context ended: %v; want the store still open", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := as.Lookup([]byte("id")); err == nil {
		t.Fatal("lookup after the backend closed: no error; want the store closed")
	}
}
