package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// TestIdempotencyKey runs on each backend, with the real server: a retry
// with the key of an answered submission gets the identical answer, even
// after a restart (the records are in the backend's State); the same key
// with another body is 422, a malformed key 400, a retry while the first
// request is being answered 409; and no replay changes the log.
func TestIdempotencyKey(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testIdempotencyKey(t, be, server, cli) })
}

func testIdempotencyKey(t *testing.T, be *backend, server, cli string) {
	dir := t.TempDir()
	// A checkpoint a second: a submission waits for one, which gives the
	// in-flight case below its time.
	srv := be.start(t, server, dir, "-checkpoint-interval", "1s")
	va := newAgentKey(t, cli, dir, "va")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "va")

	const key = `"8e03978e-40d5-43e8-bc93-6894a57f9324"`
	single, _ := va.statement("single")
	// A full batch: its answer, about a megabyte, is kept whole (on aws,
	// in a VesperState row).
	var sts []string
	for i := range 1000 {
		s, _ := va.statement(fmt.Sprintf("batch %d", i))
		sts = append(sts, s)
	}
	batch, _ := json.Marshal(vetting.BatchRequest{Statements: sts})
	type request struct {
		path, ctype string
		body        []byte
	}
	add := request{"/vetting/v1/add", "application/jose", []byte(single)}
	addBatch := request{"/vetting/v1/add-batch", "application/json", batch}
	post := func(url string, r request, key string) (*http.Response, []byte) {
		t.Helper()
		return httpDo(t, http.MethodPost, url+r.path, r.ctype, r.body, "Idempotency-Key", key)
	}

	_, first := post(srv.url, add, key)
	var a vetting.AddResponse
	if err := json.Unmarshal(first, &a); err != nil || a.Duplicate || a.Receipt == "" {
		t.Fatalf("first submission: %s", first)
	}
	// The same key on the other endpoint is another record.
	_, firstBatch := post(srv.url, addBatch, key)
	if n := bytes.Count(firstBatch, []byte(`"receipt":`)); n != 1000 {
		t.Fatalf("first batch: %.500s", firstBatch)
	}
	t.Logf("a 1,000-statement batch's answer is %d bytes", len(firstBatch))
	size := publishedSize(t, srv, 1001)

	srv.stop(t)
	srv = be.start(t, server, dir, "-checkpoint-interval", "1s")
	for _, c := range []struct {
		r     request
		first []byte
	}{{add, first}, {addBatch, firstBatch}} {
		resp, again := post(srv.url, c.r, key)
		if resp.StatusCode != 200 || !bytes.Equal(again, c.first) {
			t.Fatalf("retry of %s after a restart: %d\n%.500s\nwant the first answer\n%.500s", c.r.path, resp.StatusCode, again, c.first)
		}
	}
	if !bytes.Contains(first, []byte(`"duplicate":false`)) {
		t.Fatalf("the replayed answer is not the first's: %s", first)
	}

	other, _ := va.statement("other")
	for _, c := range []struct {
		what   string
		r      request
		key    string
		status int
	}{
		{"the key with another body", request{add.path, add.ctype, []byte(other)}, key, 422},
		{"the batch's key with another batch", request{addBatch.path, addBatch.ctype, []byte(`{"statements":[` + fmt.Sprintf("%q", other) + `]}`)}, key, 422},
		{"a key that is not a quoted string", add, "8e03978e-40d5-43e8-bc93-6894a57f9324", 400},
		{"an empty key", add, `""`, 400},
		{"a key with parameters", add, `"k";a=1`, 400},
	} {
		resp, body := post(srv.url, c.r, c.key)
		var p problem.Details
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Detail == "" {
			t.Errorf("%s: %d %s, want a %d problem", c.what, resp.StatusCode, body, c.status)
		}
	}
	if got := publishedSize(t, srv, size); got != size {
		t.Fatalf("log size %d after replays and refusals, want %d", got, size)
	}

	// Two requests with one key at once: one runs, the other is told to
	// retry (409, Retry-After), and its retry gets the first's answer.
	// The second may reach the server first: either may be the 409.
	for try := 0; ; try++ {
		if try == 5 {
			t.Fatal("no 409 in 5 pairs of concurrent requests")
		}
		jws, _ := va.statement(fmt.Sprintf("concurrent %d", try))
		r := request{add.path, add.ctype, []byte(jws)}
		k := fmt.Sprintf(`"concurrent-%d"`, try)
		answers := make(chan answered, 2)
		for range 2 {
			go func() { answers <- postKey(srv.url+r.path, r.ctype, k, r.body) }()
			time.Sleep(50 * time.Millisecond)
		}
		x, y := <-answers, <-answers
		if x.status == 409 {
			x, y = y, x
		}
		if x.err != nil || y.err != nil || x.status != 200 {
			t.Fatalf("concurrent requests: %+v, %+v", x, y)
		}
		if y.status != 409 {
			continue // the first was answered before the second came
		}
		if y.retryAfter == "" || y.ctype != "application/problem+json" {
			t.Fatalf("409 without Retry-After or problem: %+v", y)
		}
		if resp, again := post(srv.url, r, k); resp.StatusCode != 200 || !bytes.Equal(again, x.body) {
			t.Fatalf("retry after the 409: %d %s, want %s", resp.StatusCode, again, x.body)
		}
		break
	}
}

// answered is an HTTP answer, for requests made off the test's goroutine.
type answered struct {
	status            int
	ctype, retryAfter string
	body              []byte
	err               error
}

func postKey(url, ctype, key string, body []byte) answered {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answered{err: err}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
	if err != nil {
		return answered{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answered{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), b, err}
}

// publishedSize waits until the served checkpoint reaches at least want,
// then two checkpoint intervals more, and returns its size: what a
// request that changed the log would have grown by then.
func publishedSize(t *testing.T, srv *running, want uint64) uint64 {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("checkpoint size %d", want), func() (bool, string) {
		_, cp, _ := servedLog(t, srv.url+"/vetting/", srv.vkey)
		return cp.Size >= want, fmt.Sprint(cp.Size)
	})
	time.Sleep(2500 * time.Millisecond)
	_, cp, _ := servedLog(t, srv.url+"/vetting/", srv.vkey)
	if !strings.HasPrefix(cp.Origin, "e2e.test/vetting") {
		t.Fatalf("checkpoint of %q", cp.Origin)
	}
	return cp.Size
}
