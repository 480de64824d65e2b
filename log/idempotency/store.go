package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage"
)

// Defaults of Config, and where records live.
const (
	// DefaultTTL is how long a key is remembered after its first request
	// started: a day of retries, as the draft's examples suggest.
	DefaultTTL = 24 * time.Hour
	// DefaultStale is how long a request may hold a key unanswered before
	// a retry takes the key over: its front end died or hung.
	DefaultStale = 2 * time.Minute
	// DefaultSweepEvery is how often SweepEvery removes expired records.
	DefaultSweepEvery = time.Hour
	// Dir is the State directory of the records.
	Dir = "idempotency/"
)

// storeTimeout bounds the State calls made once the answer is ready; they
// outlive the client's connection, so that a client gone does not leave
// its key held.
const storeTimeout = 10 * time.Second

// claimTries bounds the loop that takes a key: each round lost means that
// another request created, replaced or dropped the record in between.
const claimTries = 5

// sweepPage is how many record names a sweep lists at once.
const sweepPage = 500

// Config configures a Store.
type Config struct {
	State storage.State // where records live; required
	// TTL is how long a record is kept after its first request started;
	// 0 means DefaultTTL.
	TTL time.Duration
	// Stale is how long an unanswered request holds its key; 0 means
	// DefaultStale. It must exceed the longest a handler runs.
	Stale time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store keeps the answers of requests by key. It is safe for concurrent
// use, and any number of Stores (front ends) may share one State.
type Store struct {
	cfg Config
}

// New returns a Store on cfg.State.
func New(cfg Config) *Store {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Stale == 0 {
		cfg.Stale = DefaultStale
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg}
}

// record is a key's document in the State: an in-flight marker while
// Holder is set, else the answer.
type record struct {
	Fingerprint []byte `json:"fingerprint"` // SHA-256 of the endpoint and body
	Created     int64  `json:"created"`     // Unix milliseconds: when the first request started
	// Holder is a random nonce, so that two markers never have the same
	// bytes: a takeover's Swap must fail for all but one taker.
	Holder      []byte `json:"holder,omitempty"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// Name returns the State name of the record of key at endpoint, and the
// fingerprint of a request with body: hashes, so that any key makes a safe
// name and a record holds no request.
func Name(endpoint, key string) string {
	return Dir + hex.EncodeToString(hash("key", endpoint, []byte(key)))
}

func fingerprint(endpoint string, body []byte) []byte { return hash("body", endpoint, body) }

func hash(kind, endpoint string, b []byte) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "vesperlog idempotency v1 %s\x00%s\x00", kind, endpoint)
	h.Write(b)
	return h.Sum(nil)
}

// Wrap returns next made idempotent for the requests to endpoint that
// carry the header; the others go to next unchanged. maxBody is next's
// body limit: a larger body goes to next, whose refusal is not kept.
//
//	mux.HandleFunc("POST /v1/add", store.Wrap("/v1/add", maxAddBody, handleAdd))
func (s *Store) Wrap(endpoint string, maxBody int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lines := r.Header.Values(Header)
		if len(lines) == 0 {
			next(w, r)
			return
		}
		key, err := ParseKey(lines)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			problem.Write(w, r, fmt.Errorf("%w: reading body: %v", problem.ErrBadRequest, err))
			return
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		if int64(len(body)) > maxBody {
			next(w, r) // a 413, which is not kept
			return
		}
		name := Name(endpoint, key)
		mine, err := json.Marshal(record{Fingerprint: fingerprint(endpoint, body), Created: s.cfg.Now().UnixMilli(), Holder: nonce()})
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		prev, err := s.claim(r.Context(), name, mine)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		if prev != nil {
			w.Header().Set("Content-Type", prev.ContentType)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(prev.Status)
			_, _ = w.Write(prev.Body)
			return
		}
		rec := &recorder{header: http.Header{}}
		next(rec, r)
		s.settle(r, name, mine, rec)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	}
}

func nonce() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return b
}

// claim takes the key's record for this request (mine is its in-flight
// marker) and returns nil, or returns the answer of an earlier request
// with the same fingerprint, or a problem: 422 for another fingerprint,
// 409 while the earlier request is being answered.
func (s *Store) claim(ctx context.Context, name string, mine []byte) (*record, error) {
	var m record
	if err := json.Unmarshal(mine, &m); err != nil {
		return nil, err
	}
	for range claimTries {
		ok, err := s.cfg.State.Create(ctx, name, mine)
		if err != nil {
			return nil, unavailable(ctx, name, err)
		}
		if ok {
			return nil, nil
		}
		cur, err := s.cfg.State.Get(ctx, name)
		if errors.Is(err, storage.ErrNotExist) {
			continue // answered with a refusal, or swept, just now
		}
		if err != nil {
			return nil, unavailable(ctx, name, err)
		}
		var prev record
		if err := json.Unmarshal(cur, &prev); err != nil {
			return nil, fmt.Errorf("idempotency record %s: %w", name, err)
		}
		now := s.cfg.Now()
		age := now.Sub(time.UnixMilli(prev.Created))
		same := bytes.Equal(prev.Fingerprint, m.Fingerprint)
		switch {
		case age < s.cfg.TTL && !same:
			return nil, fmt.Errorf("%w: this key was first used %s ago, with another body or endpoint; use a new key for a new request (keys are kept for %s)",
				problem.ErrKeyReused, age.Round(time.Second), s.cfg.TTL)
		case age < s.cfg.TTL && prev.Holder == nil:
			return &prev, nil
		case age < s.cfg.Stale:
			return nil, &problem.Retry{Err: fmt.Errorf("%w: the first request with this key, %s ago, is still being answered", problem.ErrInProgress, age.Round(time.Millisecond)), After: time.Second}
		}
		// Expired, or a marker whose holder died: take the key over.
		if ok, err := s.cfg.State.Swap(ctx, name, cur, mine); err != nil {
			return nil, unavailable(ctx, name, err)
		} else if ok {
			return nil, nil
		}
	}
	return nil, &problem.Retry{Err: fmt.Errorf("%w: other requests with this key are racing for it", problem.ErrInProgress), After: time.Second}
}

// unavailable is a State failure, logged here: its text may name the
// database, so the client gets a detail of its own.
func unavailable(ctx context.Context, name string, err error) error {
	slog.ErrorContext(ctx, "idempotency record", "name", name, "err", err)
	return fmt.Errorf("%w: the Idempotency-Key record cannot be read or written now", problem.ErrUnavailable)
}

// settle replaces the request's marker by its answer if the answer is
// final (a 2xx without Retry-After), and drops it otherwise, so that a
// retry runs again. Failures are logged: the client gets its answer.
func (s *Store) settle(r *http.Request, name string, mine []byte, rec *recorder) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	if rec.status/100 == 2 && rec.header.Get("Retry-After") == "" {
		var m record
		_ = json.Unmarshal(mine, &m)
		m.Holder, m.Status, m.ContentType, m.Body = nil, rec.status, rec.header.Get("Content-Type"), rec.body.Bytes()
		b, err := json.Marshal(m)
		if err == nil {
			var ok bool
			if ok, err = s.cfg.State.Swap(ctx, name, mine, b); err == nil {
				if !ok {
					slog.WarnContext(ctx, "idempotency key taken over while its request was answered; its answer is not kept", "name", name)
				}
				return
			}
		}
		slog.ErrorContext(ctx, "keeping the answer of an idempotent request", "name", name, "err", err)
	}
	if _, err := s.cfg.State.Delete(ctx, name, mine); err != nil {
		slog.ErrorContext(ctx, "releasing an idempotency key; it stays held until it is stale", "name", name, "stale", s.cfg.Stale, "err", err)
	}
}

// recorder holds a handler's answer until it is kept.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// Sweep removes the records that expired, and returns how many it removed.
// Front ends may sweep at once: a record is removed only if it is still
// the one found expired.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	removed, after := 0, ""
	for {
		names, err := s.cfg.State.List(ctx, Dir, after, sweepPage)
		if err != nil {
			return removed, err
		}
		for _, name := range names {
			b, err := s.cfg.State.Get(ctx, name)
			if errors.Is(err, storage.ErrNotExist) {
				continue
			}
			if err != nil {
				return removed, err
			}
			var rec record
			if err := json.Unmarshal(b, &rec); err != nil {
				slog.WarnContext(ctx, "unreadable idempotency record left alone", "name", name, "err", err)
				continue
			}
			if s.cfg.Now().Sub(time.UnixMilli(rec.Created)) < s.cfg.TTL {
				continue
			}
			ok, err := s.cfg.State.Delete(ctx, name, b)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
		if len(names) < sweepPage {
			return removed, nil
		}
		after = names[len(names)-1]
	}
}

// SweepEvery sweeps now and then every d, on a goroutine that runs until
// ctx ends or stop is called; stop waits for it.
//
//	stop := store.SweepEvery(ctx, idempotency.DefaultSweepEvery)
//	defer stop()
func (s *Store) SweepEvery(ctx context.Context, d time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			n, err := s.Sweep(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				slog.Error("sweeping expired idempotency records", "removed", n, "err", err)
			case n > 0:
				slog.Info("swept expired idempotency records", "removed", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
