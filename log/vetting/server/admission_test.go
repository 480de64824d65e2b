package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// TestAdmissionSheds: with the server's bound of entries in flight taken,
// add and add-batch get 503 problem+json with Retry-After at once, before
// the body is even parsed, and nothing is logged; once the entries are
// answered, submissions are taken again.
func TestAdmissionSheds(t *testing.T) {
	adm := vlog.NewAdmission(3, nil)
	h := newHarnessAdmission(t, nil, adm)
	h.add(h.statement(h.es, 1, "", h.now))
	if n := adm.InFlight(); n != 0 {
		t.Fatalf("%d entries in flight after an answered add; want 0", n)
	}

	// Entries admitted elsewhere (another request, the STI-CT log) fill
	// the bound.
	hold, err := adm.Admit(context.Background(), "other", 3)
	if err != nil {
		t.Fatal(err)
	}
	stmt := h.statement(h.es, 2, "", h.now)
	body, _ := json.Marshal(vetting.BatchRequest{Statements: []string{stmt, h.statement(h.es, 3, "", h.now)}})
	for _, c := range []struct{ path, contentType, body string }{
		{"/v1/add", "application/jose", stmt},
		{"/v1/add", "application/jose", "not a statement"}, // refused before it is parsed
		{"/v1/add-batch", "application/json", string(body)},
	} {
		start := time.Now()
		code, hdr, out := h.post(c.path, c.contentType, c.body)
		var p problem.Details
		if code != 503 || hdr.Get("Retry-After") != "1" || hdr.Get("Content-Type") != "application/problem+json" || json.Unmarshal(out, &p) != nil || p.Status != 503 {
			t.Fatalf("%s at the bound: %d %v %s; want 503 problem+json with Retry-After 1", c.path, code, hdr, out)
		}
		if !strings.Contains(p.Detail, "in flight") {
			t.Errorf("%s: detail %q does not say why", c.path, p.Detail)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: the 503 took %s", c.path, took)
		}
	}
	time.Sleep(150 * time.Millisecond) // a checkpoint interval
	if n := h.size(); n != 1 {
		t.Fatalf("log size %d after shed requests; want 1", n)
	}
	hold()
	if r := h.add(stmt); r.Index != 1 {
		t.Fatalf("after the bound freed: %+v", r)
	}
	code, _, out := h.post("/v1/add-batch", "application/json", string(body))
	if code != 200 {
		t.Fatalf("batch after the bound freed: %d %s", code, out)
	}
	if n := adm.InFlight(); n != 0 {
		t.Fatalf("%d entries in flight after the answers; want 0", n)
	}
}

// stalling wraps a real antispam store; its entries never get an index:
// their futures wait until the request gives up.
type stalling struct{ tessera.Antispam }

func (s stalling) Decorator() func(tessera.AddFn) tessera.AddFn {
	return func(tessera.AddFn) tessera.AddFn {
		return func(ctx context.Context, _ *tessera.Entry) tessera.IndexFuture {
			return func() (tessera.Index, error) {
				<-ctx.Done()
				return tessera.Index{}, ctx.Err()
			}
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientGone: a client that gives up on a batch (its timeout) is not
// the server's failure: one log line for the request, at info, saying the
// client went away, not an "Internal server error" per entry; a single
// add likewise. The entries in flight are released.
func TestClientGone(t *testing.T) {
	logs := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	adm := vlog.NewAdmission(1000, nil)
	h := newHarnessAdmission(t, func(as tessera.Antispam) tessera.Antispam { return stalling{as} }, adm)

	stmts := make([]string, 20)
	for i := range stmts {
		stmts[i] = h.statement(h.es, byte(i), "", h.now)
	}
	body, _ := json.Marshal(vetting.BatchRequest{Statements: stmts})
	for _, c := range []struct {
		path, contentType, body string
	}{
		{"/v1/add-batch", "application/json", string(body)},
		{"/v1/add", "application/jose", stmts[0]},
	} {
		before := strings.Count(logs.String(), "\n")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.contentType)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %d; want the client to time out", c.path, resp.StatusCode)
		}
		var lines []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if lines = strings.Split(strings.TrimSpace(logs.String()), "\n")[before:]; len(lines) > 0 && adm.InFlight() == 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond) // room for any further line
		lines = strings.Split(strings.TrimSpace(logs.String()), "\n")[before:]
		if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "client went away") ||
			!strings.Contains(lines[0], "status=499") || !strings.Contains(lines[0], "context canceled") {
			t.Errorf("%s abandoned by its client: logged\n%s\nwant one INFO line saying the client went away, with the cause", c.path, strings.Join(lines, "\n"))
		}
		if n := adm.InFlight(); n != 0 {
			t.Errorf("%s: %d entries still in flight after the client went away", c.path, n)
		}
	}
	if strings.Contains(logs.String(), "Internal server error") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("abandoned requests logged as server errors:\n%s", logs.String())
	}
}
