package witness

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Handler serves the tlog-witness API: POST /add-checkpoint and the
// monitoring read GET /<hex SHA-256 of origin>/checkpoint. Errors are
// problem+json, except 409, whose body the spec fixes: the latest
// cosigned size, as text/x.tlog.size.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
		if err != nil {
			problem.Write(rw, r, fmt.Errorf("%w: %v", problem.ErrTooLarge, err))
			return
		}
		sigs, err := w.AddCheckpoint(body)
		var conflict *ConflictError
		switch {
		case errors.As(err, &conflict):
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", conflict.Size)
		case err != nil:
			problem.Write(rw, r, err)
		default:
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = rw.Write(sigs)
		}
	})
	mux.HandleFunc("GET /{hash}/checkpoint", func(rw http.ResponseWriter, r *http.Request) {
		cp, err := w.Checkpoint(r.PathValue("hash"))
		if err != nil {
			problem.Write(rw, r, err)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-cache")
		_, _ = rw.Write(cp)
	})
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		problem.Write(rw, r, fmt.Errorf("%w: no %s %s here", problem.ErrNotFound, r.Method, r.URL.Path))
	})
	return mux
}
