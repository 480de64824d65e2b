package log

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Cache-Control values of the tlog-tiles endpoints: the checkpoint is
// mutable, tiles and bundles are immutable.
const (
	cacheMutable   = "no-cache"
	cacheImmutable = "public, max-age=31536000, immutable"
)

// HandleReads registers the C2SP tlog-tiles read API of l under prefix
// (for example "/vetting"): checkpoint, tiles and entry bundles.
func (l *Log) HandleReads(mux *http.ServeMux, prefix string) {
	mux.HandleFunc("GET "+prefix+"/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := l.Checkpoint(r.Context())
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", cacheMutable)
		_, _ = w.Write(cp)
	})
	mux.HandleFunc("GET "+prefix+"/tile/{path...}", func(w http.ResponseWriter, r *http.Request) {
		b, err := l.readTilePath(r.Context(), r.PathValue("path"))
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", cacheImmutable)
		w.Header().Set("Vary", "Accept-Encoding")
		if strings.HasPrefix(r.PathValue("path"), l.format.bundleDir()) && acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write(b)
			_ = zw.Close()
			return
		}
		_, _ = w.Write(b)
	})
}

// readTilePath reads a tile or entry bundle named by its path below tile/.
// Only the canonical path of a resource is served.
func (l *Log) readTilePath(ctx context.Context, path string) ([]byte, error) {
	notFound := fmt.Errorf("%w: no tile at %q", problem.ErrNotFound, path)
	if rest, ok := strings.CutPrefix(path, l.format.bundleDir()); ok {
		n, p, err := layout.ParseTileIndexPartial(rest)
		if err != nil || l.format.bundleDir()+layout.NWithSuffix(0, n, p) != path {
			return nil, notFound
		}
		b, err := l.reader.ReadEntryBundle(ctx, n, p)
		if err != nil {
			return nil, readErr(err, notFound)
		}
		return l.format.truncate(b, p)
	}
	level, rest, ok := strings.Cut(path, "/")
	if !ok {
		return nil, notFound
	}
	lv, n, p, err := layout.ParseTileLevelIndexPartial(level, rest)
	if err != nil || layout.TilePath(lv, n, p) != "tile/"+path {
		return nil, notFound
	}
	b, err := l.reader.ReadTile(ctx, lv, n, p)
	if err != nil {
		return nil, readErr(err, notFound)
	}
	// The reader answers with the full tile once the partial one is gone;
	// its first p hashes are the partial tile.
	if p > 0 && len(b) > int(p)*32 {
		b = b[:int(p)*32]
	}
	return b, nil
}

func readErr(err, notFound error) error {
	if errors.Is(err, os.ErrNotExist) {
		return notFound
	}
	return fmt.Errorf("reading tile: %w", err)
}

// truncateBundle keeps the first p entries of a bundle when the reader
// answered a partial request with the full bundle.
func truncateBundle(b []byte, p uint8) ([]byte, error) {
	if p == 0 {
		return b, nil
	}
	off := 0
	for i := 0; i < int(p); i++ {
		if len(b[off:]) < 2 {
			return nil, fmt.Errorf("entry bundle shorter than %d entries", p)
		}
		off += 2 + int(binary.BigEndian.Uint16(b[off:]))
		if off > len(b) {
			return nil, fmt.Errorf("entry bundle entry %d overruns the bundle", i)
		}
	}
	return b[:off], nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
