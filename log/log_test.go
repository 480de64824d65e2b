package log

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/storage/posix"
	"github.com/vesperlog/vesperlog/storage/antispam"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
)

// openTestLog opens a log on a fresh POSIX directory whose entries'
// identity is their first byte, so that "a1" and "a2" are the same entry.
func openTestLog(t *testing.T) (*Log, note.Verifier) {
	t.Helper()
	return openTestLogWith(t, func(e []byte) ([]byte, error) {
		if len(e) == 0 {
			return nil, errors.New("empty entry")
		}
		return e[:1], nil
	})
}

// openTestLogWith is openTestLog with the given identity of entries.
func openTestLogWith(t testing.TB, identity func([]byte) ([]byte, error)) (*Log, note.Verifier) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	d, err := posix.New(ctx, posix.Config{Path: filepath.Join(dir, "log")})
	if err != nil {
		t.Fatal(err)
	}
	as, err := antispam.Open(filepath.Join(dir, "antispam"), antispam.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, d, Options{
		Signer:             signer,
		Format:             TlogTiles(identity),
		Antispam:           as,
		CheckpointInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := as.Close(); err != nil {
			t.Errorf("closing the dedup store: %v", err)
		}
	})
	return l, verifier
}

func add(t *testing.T, l *Log, e string) (uint64, bool, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	i, dup, cp, err := l.Add(ctx, []byte(e))
	if err != nil {
		t.Fatalf("Add(%q): %v", e, err)
	}
	return i, dup, cp
}

func TestAddDedupAndProve(t *testing.T) {
	l, v := openTestLog(t)
	ctx := context.Background()
	if i, dup, _ := add(t, l, "a1"); i != 0 || dup {
		t.Fatalf("first entry: %d, dup %v", i, dup)
	}
	if i, dup, _ := add(t, l, "b1"); i != 1 || dup {
		t.Fatalf("second entry: %d, dup %v", i, dup)
	}
	// Other bytes, same identity: the entry already logged.
	i, dup, cp := add(t, l, "a2")
	if i != 0 || !dup {
		t.Fatalf("same identity again: %d, dup %v", i, dup)
	}
	c, _, _, err := fmtlog.ParseCheckpoint(cp, l.Origin(), v)
	if err != nil {
		t.Fatalf("Add's checkpoint: %v", err)
	}
	if c.Size != 2 {
		t.Fatalf("checkpoint size %d, want 2", c.Size)
	}
	pr, err := l.Prover(ctx, c.Size)
	if err != nil {
		t.Fatal(err)
	}
	for idx, want := range []string{"a1", "b1"} {
		e, err := pr.Entry(ctx, uint64(idx))
		if err != nil || string(e) != want {
			t.Fatalf("Entry(%d) = %q, %v", idx, e, err)
		}
		p, err := pr.InclusionProof(ctx, uint64(idx))
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(idx), c.Size, rfc6962.DefaultHasher.HashLeaf(e), p, c.Hash); err != nil {
			t.Fatalf("entry %d: %v", idx, err)
		}
	}
	if _, err := pr.Entry(ctx, 2); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("Entry beyond the tree: %v", err)
	}
	if idx, ok, err := l.Lookup(ctx, []byte("b")); err != nil || !ok || idx != 1 {
		t.Fatalf("Lookup(b) = %d, %v, %v", idx, ok, err)
	}
	if _, ok, err := l.Lookup(ctx, []byte("z")); err != nil || ok {
		t.Fatalf("Lookup(z) = %v, %v", ok, err)
	}
	// An entry the format has no identity for is refused, not logged.
	if _, _, _, err := l.Add(ctx, nil); !errors.Is(err, problem.ErrBadRequest) {
		t.Fatalf("Add(empty) = %v", err)
	}
}

// TestConcurrentDuplicates races many submissions of one identity: exactly
// one is new, all get its index.
func TestConcurrentDuplicates(t *testing.T) {
	l, _ := openTestLog(t)
	const n = 64
	var wg sync.WaitGroup
	idx := make([]uint64, n)
	dup := make([]bool, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx[i], dup[i], _ = add(t, l, fmt.Sprintf("c%d", i))
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range idx {
		if idx[i] != idx[0] {
			t.Fatalf("submission %d got index %d, submission 0 got %d", i, idx[i], idx[0])
		}
		if !dup[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d submissions were logged as new, want 1", fresh)
	}
}

func TestReads(t *testing.T) {
	l, v := openTestLog(t)
	for i := 0; i < 5; i++ {
		add(t, l, fmt.Sprintf("%c-entry", 'a'+i))
	}
	mux := http.NewServeMux()
	l.HandleReads(mux, "/log")
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/log/checkpoint")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("checkpoint: %d %v", resp.StatusCode, resp.Header)
	}
	if _, _, _, err := fmtlog.ParseCheckpoint(body, l.Origin(), v); err != nil {
		t.Fatalf("served checkpoint: %v", err)
	}

	resp = get("/log/tile/0/000.p/5")
	tile, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(tile) != 5*32 || resp.Header.Get("Cache-Control") != cacheImmutable {
		t.Fatalf("partial tile: %d, %d bytes, %v", resp.StatusCode, len(tile), resp.Header)
	}
	if want := rfc6962.DefaultHasher.HashLeaf([]byte("c-entry")); !bytes.Equal(tile[64:96], want) {
		t.Fatalf("tile hash 2 = %x, want %x", tile[64:96], want)
	}

	resp = get("/log/tile/entries/000.p/5", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("entry bundle not gzipped: %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := io.ReadAll(zr)
	if !bytes.HasPrefix(bundle, append([]byte{0, 7}, "a-entry"...)) {
		t.Fatalf("bundle starts %q", bundle[:min(len(bundle), 12)])
	}

	for _, path := range []string{
		"/log/tile/0/000.p/6",  // wider than the tree
		"/log/tile/00/000.p/5", // level with a leading zero
		"/log/tile/0/0.p/5",    // index not zero-padded
		"/log/tile/0/000.p/05", // width with a leading zero
		"/log/tile/0/000",      // no full tile yet
		"/log/tile/entries/x000/000.p/5",
		"/log/tile/64/000",
		"/log/tile/0/000.p/0",
	} {
		resp := get(path)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want a 404 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                     false,
		"gzip":                 true,
		"br, gzip;q=0.5":       true,
		"gzip;q=0":             false,
		"GZIP":                 true,
		"identity":             false,
		"gzip;q=0.0, identity": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Encoding", h)
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v", h, got)
		}
	}
}

func TestTruncateBundle(t *testing.T) {
	full := []byte{0, 1, 'a', 0, 2, 'b', 'c', 0, 0}
	if b, err := truncateBundle(full, 2); err != nil || !bytes.Equal(b, full[:7]) {
		t.Fatalf("truncateBundle = %q, %v", b, err)
	}
	if _, err := truncateBundle(full[:4], 2); err == nil {
		t.Fatal("overrun accepted")
	}
}
