package client

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/transparency-dev/tessera/api/layout"
)

// Fetcher reads a tlog-tiles log: its checkpoint, tiles and entry bundles.
// A partial tile or bundle (p > 0) may be answered with the full one; the
// caller truncates.
type Fetcher interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// Size limits of what a fetcher reads: a checkpoint with many
// cosignatures, a full tile, a full bundle of maximal entries.
const (
	maxCheckpoint = 1 << 20
	maxTile       = 256 * 32
	maxBundle     = 256 * (2 + 65535)
	// maxDataTile bounds a static-ct-api data tile: 256 leaves of a
	// certificate (or precertificate and its TBS) with a short chain.
	maxDataTile = 256 * 256 << 10
	maxIssuer   = 64 << 10
)

// IssuerFetcher is a Fetcher of a static-ct-api log, which also serves
// the issuer certificates its data tiles name by SHA-256 fingerprint.
type IssuerFetcher interface {
	Fetcher
	ReadIssuer(ctx context.Context, fingerprint [32]byte) ([]byte, error)
}

// bundlePath is where entry bundle index is: tlog-tiles' entries, or a
// static-ct-api log's data tiles.
func bundlePath(staticCT bool, index uint64, p uint8) (string, int64) {
	if staticCT {
		return "tile/data/" + layout.NWithSuffix(0, index, p), maxDataTile
	}
	return layout.EntriesPath(index, p), maxBundle
}

func issuerPath(fp [32]byte) string { return "issuer/" + hex.EncodeToString(fp[:]) }

// HTTPOptions tune an HTTP fetcher; zero values take the defaults.
type HTTPOptions struct {
	Client      *http.Client
	Concurrency int           // requests in flight at once; default 8
	Retries     int           // extra tries of a failed request; default 4
	Backoff     time.Duration // first wait between tries, doubling; default 200ms
	CacheTiles  int           // full tiles kept in memory; default 1024 (8 MiB)
	// StaticCT reads a static-ct-api log: its entry bundles are data
	// tiles (tile/data/), and the fetcher is an IssuerFetcher.
	StaticCT bool
}

// NewHTTPFetcher returns a Fetcher of the log whose tlog-tiles prefix is
// prefix (e.g. http://127.0.0.1:8080/vetting). It retries failures other
// than 404 with exponential backoff, bounds its concurrency and what it
// reads, and caches full tiles, which never change.
func NewHTTPFetcher(prefix string, o HTTPOptions) (Fetcher, error) {
	u, err := url.Parse(strings.TrimSuffix(prefix, "/") + "/")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("log URL %q is not an http(s) URL", prefix)
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Retries <= 0 {
		o.Retries = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.CacheTiles <= 0 {
		o.CacheTiles = 1024
	}
	cache, err := lru.New[string, []byte](o.CacheTiles)
	if err != nil {
		return nil, err
	}
	return &httpFetcher{base: u, o: o, sem: make(chan struct{}, o.Concurrency), tiles: cache}, nil
}

type httpFetcher struct {
	base  *url.URL
	o     HTTPOptions
	sem   chan struct{} // bounds requests in flight
	tiles *lru.Cache[string, []byte]
}

func (h *httpFetcher) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return h.get(ctx, layout.CheckpointPath, maxCheckpoint)
}

func (h *httpFetcher) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	full := layout.TilePath(level, index, 0)
	if b, ok := h.tiles.Get(full); ok {
		return b, nil
	}
	b, err := partialOrFull(ctx, p, func(p uint8) ([]byte, error) { return h.get(ctx, layout.TilePath(level, index, p), maxTile) })
	if err == nil && len(b) == maxTile {
		h.tiles.Add(full, b)
	}
	return b, err
}

func (h *httpFetcher) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(ctx, p, func(p uint8) ([]byte, error) {
		path, limit := bundlePath(h.o.StaticCT, index, p)
		return h.get(ctx, path, limit)
	})
}

func (h *httpFetcher) ReadIssuer(ctx context.Context, fp [32]byte) ([]byte, error) {
	return h.get(ctx, issuerPath(fp), maxIssuer)
}

// get fetches one resource, retrying what may be transient.
func (h *httpFetcher) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	u := h.base.JoinPath(path).String()
	wait := h.o.Backoff
	var last error
	for try := 0; try <= h.o.Retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		b, retry, err := h.once(ctx, u, limit)
		if err == nil || !retry {
			return b, err
		}
		last = err
	}
	return nil, fmt.Errorf("%w (after %d tries)", last, h.o.Retries+1)
}

func (h *httpFetcher) once(ctx context.Context, u string, limit int64) ([]byte, bool, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-h.sem }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	// static-ct-api v1.1.0: logs may gzip data tiles unasked, and clients
	// must decode them. Asking explicitly (which turns off the transport's
	// own decoding) and decoding here works whatever the http.Client's
	// transport does about compression.
	req.Header.Set("Accept-Encoding", "gzip, identity")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, fmt.Errorf("GET %s: %w", u, os.ErrNotExist)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, true, fmt.Errorf("GET %s: %s", u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body io.Reader = resp.Body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); {
	case resp.Uncompressed, enc == "", enc == "identity":
	case enc == "gzip":
		// The compressed body is bounded too: gzip adds at most a few
		// bytes per 32 KiB block to data that does not compress.
		zr, err := gzip.NewReader(io.LimitReader(resp.Body, limit+limit/64+1024))
		if err != nil {
			return nil, true, fmt.Errorf("GET %s: gzip: %w", u, err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, false, fmt.Errorf("GET %s: unsupported Content-Encoding %q", u, enc)
	}
	// The limit applies after decompression.
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, true, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, false, fmt.Errorf("GET %s: over %d bytes", u, limit)
	}
	return b, false, nil
}

// NewDirFetcher returns a Fetcher of a log stored in a directory: a mirror,
// or a copy of a POSIX log.
func NewDirFetcher(dir string) Fetcher { return dirFetcher{dir: dir} }

// NewStaticCTDirFetcher is NewDirFetcher for a static-ct-api log.
func NewStaticCTDirFetcher(dir string) IssuerFetcher { return dirFetcher{dir: dir, staticCT: true} }

type dirFetcher struct {
	dir      string
	staticCT bool
}

func (d dirFetcher) read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(path)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over %d bytes", path, limit)
	}
	return b, err
}

func (d dirFetcher) ReadCheckpoint(context.Context) ([]byte, error) {
	return d.read(layout.CheckpointPath, maxCheckpoint)
}

func (d dirFetcher) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(ctx, p, func(p uint8) ([]byte, error) { return d.read(layout.TilePath(level, index, p), maxTile) })
}

func (d dirFetcher) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(ctx, p, func(p uint8) ([]byte, error) { return d.read(bundlePath(d.staticCT, index, p)) })
}

func (d dirFetcher) ReadIssuer(_ context.Context, fp [32]byte) ([]byte, error) {
	return d.read(issuerPath(fp), maxIssuer)
}

// partialOrFull reads a partial resource, or the full one once the log has
// completed it and removed the partial (tlog-tiles allows both).
func partialOrFull(ctx context.Context, p uint8, read func(uint8) ([]byte, error)) ([]byte, error) {
	b, err := read(p)
	if p != 0 && errors.Is(err, os.ErrNotExist) && ctx.Err() == nil {
		return read(0)
	}
	return b, err
}
