package idempotency

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// states opens a fresh State of each backend that runs here.
func states(t *testing.T) map[string]func(t *testing.T) storage.State {
	open := func(t *testing.T, c storage.Config) storage.State {
		b, err := storage.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b.State()
	}
	return map[string]func(t *testing.T) storage.State{
		storage.POSIX: func(t *testing.T) storage.State { return open(t, storage.Config{Dir: t.TempDir()}) },
		storage.AWS: func(t *testing.T) storage.State {
			a := storagetest.NewAWS(t)
			return open(t, storage.Config{Backend: storage.AWS, DSN: a.DSN, Bucket: a.Bucket, S3Endpoint: a.Endpoint})
		},
	}
}

// endpoint is a handler that counts its runs and answers each with the
// next of its scripted statuses (200 once the script is done), echoing
// the body and the run's number; a run waits while hold is set.
type endpoint struct {
	runs   atomic.Int32
	mu     sync.Mutex // guards script and hold
	script []int
	hold   chan struct{}
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := e.runs.Add(1)
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	status, hold := http.StatusOK, e.hold
	if len(e.script) > 0 {
		status, e.script = e.script[0], e.script[1:]
	}
	e.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if status == 299 { // a 2xx that asks for a retry: a batch with entries pushed back
		w.Header().Set("Retry-After", "1")
		status = 200
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"run":%d,"body":%q}`, n, body)
}

type fixture struct {
	t    *testing.T
	ep   *endpoint
	url  string
	now  atomic.Int64 // the stores' clock, Unix milliseconds
	st   storage.State
	stor *Store
}

// newFixture serves ep at /add through two Stores (two front ends) on one
// State, behind one HTTP server: requests alternate between them.
func newFixture(t *testing.T, st storage.State) *fixture {
	f := &fixture{t: t, ep: &endpoint{}, st: st}
	f.now.Store(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli())
	clock := func() time.Time { return time.UnixMilli(f.now.Load()) }
	f.stor = New(Config{State: st, Now: clock})
	other := New(Config{State: st, Now: clock})
	var turn atomic.Int32
	one, two := f.stor.Wrap("/add", 1024, f.ep.serve), other.Wrap("/add", 1024, f.ep.serve)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if turn.Add(1)%2 == 0 {
			two(w, r)
		} else {
			one(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/add"
	return f
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) post(key, body string) answer {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	if key != "" {
		req.Header.Set(Header, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) problem(a answer, status int) {
	f.t.Helper()
	var p problem.Details
	if a.status != status || a.header.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(a.body), &p) != nil || p.Detail == "" {
		f.t.Fatalf("got %d %s %s, want a %d problem", a.status, a.header.Get("Content-Type"), a.body, status)
	}
}

func (f *fixture) runs(want int32) {
	f.t.Helper()
	if got := f.ep.runs.Load(); got != want {
		f.t.Fatalf("the handler ran %d times, want %d", got, want)
	}
}

// TestReplay follows the draft's cases, with requests alternating
// between two front ends on one State.
func TestReplay(t *testing.T) {
	for name, open := range states(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open(t))
			key := FormatKey("8e03978e-40d5-43e8-bc93-6894a57f9324")

			first := f.post(key, "one")
			if first.status != 200 || first.body != `{"run":1,"body":"one"}` {
				t.Fatalf("first request: %+v", first)
			}
			// Same key, same body, at either front end: the first answer,
			// not a second run.
			for range 3 {
				if again := f.post(key, "one"); again.status != 200 || again.body != first.body || again.header.Get("Content-Type") != "application/json" {
					t.Fatalf("retry: %+v, want %+v", again, first)
				}
			}
			f.runs(1)
			// Same key, another body: 422, and nothing runs.
			f.problem(f.post(key, "two"), http.StatusUnprocessableEntity)
			f.runs(1)
			// The key is per endpoint... and per key: another key runs.
			if a := f.post(FormatKey("another"), "one"); a.body != `{"run":2,"body":"one"}` {
				t.Fatalf("another key: %+v", a)
			}
			// Without the header nothing changes: every request runs.
			f.post("", "one")
			f.post("", "one")
			f.runs(4)
			// A malformed key: 400, and nothing runs.
			for _, bad := range []string{"8e03978e", `""`, `"a";p=1`} {
				f.problem(f.post(bad, "one"), http.StatusBadRequest)
			}
			f.runs(4)
			// A body over the handler's limit goes to the handler (whose
			// 413 would not be kept).
			f.post(FormatKey("big"), strings.Repeat("x", 1025))
			f.runs(5)
		})
	}
}

// TestNotKept: an answer other than a final 2xx is not kept, so a retry
// with the key runs again; the first 2xx is kept.
func TestNotKept(t *testing.T) {
	for name, open := range states(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open(t))
			f.ep.script = []int{503, 500, 400, 409, 299}
			key := FormatKey("k")
			for i, want := range []int{503, 500, 400, 409, 200, 200} {
				if a := f.post(key, "b"); a.status != want || !strings.Contains(a.body, fmt.Sprintf(`"run":%d`, i+1)) {
					t.Fatalf("request %d: %+v, want a run that answers %d", i+1, a, want)
				}
			}
			if a := f.post(key, "b"); a.status != 200 || a.body != `{"run":6,"body":"b"}` {
				t.Fatalf("after the first final answer: %+v, want run 6's", a)
			}
			f.runs(6)
		})
	}
}

// TestInFlight: while the first request with a key is being answered, a
// retry gets 409 with Retry-After (and another body 422); a marker whose
// holder died goes stale and a retry takes the key over.
func TestInFlight(t *testing.T) {
	for name, open := range states(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open(t))
			hold := make(chan struct{})
			f.ep.hold = hold
			key := FormatKey("slow")
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("b"))
				req.Header.Set(Header, key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- answer{}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- answer{resp.StatusCode, resp.Header, string(b)}
			}()
			for i := 0; f.ep.runs.Load() == 0; i++ { // bounded: the first request starts
				if i == 500 {
					t.Fatal("the first request never reached the handler")
				}
				time.Sleep(10 * time.Millisecond)
			}
			a := f.post(key, "b")
			f.problem(a, http.StatusConflict)
			if a.header.Get("Retry-After") == "" {
				t.Fatal("409 without Retry-After")
			}
			f.problem(f.post(key, "other"), http.StatusUnprocessableEntity)
			f.ep.mu.Lock()
			f.ep.hold = nil
			f.ep.mu.Unlock()
			close(hold)
			if first := <-done; first.status != 200 || f.post(key, "b").body != first.body {
				t.Fatalf("first answer %+v is not what a retry gets", first)
			}
			f.runs(1)

			// Requests racing with a new key, at both front ends: one runs,
			// the others get its answer or 409.
			var wg sync.WaitGroup
			answers := make(chan answer, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("race"))
					req.Header.Set(Header, FormatKey("race"))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					answers <- answer{resp.StatusCode, resp.Header, string(b)}
				}()
			}
			wg.Wait()
			close(answers)
			f.runs(2)
			for a := range answers {
				if a.status != 409 && a.body != `{"run":2,"body":"race"}` {
					t.Fatalf("racing request: %+v", a)
				}
			}

			// A holder that died: its marker stays, and goes stale.
			dead := FormatKey("dead")
			marker, _ := json.Marshal(record{Fingerprint: fingerprint("/add", []byte("b")), Created: f.now.Load(), Holder: []byte("x")})
			if ok, err := f.st.Create(context.Background(), Name("/add", "dead"), marker); err != nil || !ok {
				t.Fatal(ok, err)
			}
			f.problem(f.post(dead, "b"), http.StatusConflict)
			f.now.Add((DefaultStale + time.Second).Milliseconds())
			if a := f.post(dead, "b"); a.status != 200 || a.body != `{"run":3,"body":"b"}` {
				t.Fatalf("after the marker went stale: %+v", a)
			}
		})
	}
}

// TestExpiry: a key is kept for TTL after its first request; then the
// same key is a new request, and Sweep removes what expired.
func TestExpiry(t *testing.T) {
	for name, open := range states(t) {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open(t))
			ctx := context.Background()
			f.post(FormatKey("old"), "b")
			f.now.Add((DefaultTTL - time.Hour).Milliseconds())
			f.post(FormatKey("young"), "b")
			if a := f.post(FormatKey("old"), "other"); a.status != 422 {
				t.Fatalf("a key within its TTL, reused: %+v", a)
			}
			f.now.Add((time.Hour + time.Second).Milliseconds())
			if a := f.post(FormatKey("old"), "other"); a.status != 200 || a.body != `{"run":3,"body":"other"}` {
				t.Fatalf("an expired key: %+v, want a new run", a)
			}
			f.now.Add((DefaultTTL - time.Hour).Milliseconds())
			// Now "young" has expired and "old" (renewed) has not.
			if n, err := f.stor.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("sweep removed %d, %v; want 1", n, err)
			}
			names, err := f.st.List(ctx, Dir, "", 10)
			if err != nil || len(names) != 1 || names[0] != Name("/add", "old") {
				t.Fatalf("records left: %q, %v", names, err)
			}
			if a := f.post(FormatKey("old"), "other"); a.body != `{"run":3,"body":"other"}` {
				t.Fatalf("the renewed key after a sweep: %+v", a)
			}
		})
	}
}
