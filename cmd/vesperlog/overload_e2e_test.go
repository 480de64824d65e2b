package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOverloadSheds drives the real vesperlog, with a small -max-inflight,
// well past what it admits, with the real vesperload for a few seconds
// (issue 15: overload answers fast 503s instead of letting everyone's
// latency grow). The shed requests get 503 with Retry-After, quickly; the
// accepted ones keep a bounded latency and verify; nothing shed is logged,
// the shedding is counted in /metrics and summarized in the server's log,
// not logged per request; and after the burst the server serves normally.
// The verification API shares the bound: during the burst it sheds too.
func TestOverloadSheds(t *testing.T) {
	server, cli := binaries(t)
	load, _ := loadBinaries(t)
	dir := t.TempDir()
	stictPKI(t, dir)
	srv, _ := startSTICT(t, server, dir, "-max-inflight", "40")
	newAgent(t, cli, dir)
	waitAgents(t, srv.url, "va")
	pid := strconv.Itoa(srv.cmd.Process.Pid)

	// 40 entries in flight with a 200 ms checkpoint interval take a few
	// hundred a second at most: 800/s is well past it.
	stopAPI := make(chan struct{})
	apiDone := make(chan map[string]int)
	go func() { apiDone <- postVerifyAPI(srv.url, stopAPI) }()
	burst := runLoad(t, load, dir, "-target", srv.url, "-key", "va.jwk", "-rate", "800", "-duration", "4s",
		"-max-inflight", "4000", "-verify", "1", "-pid", pid)
	close(stopAPI)
	api := <-apiDone
	t.Logf("verification API during the burst: %v", api)
	for _, path := range verifyEndpoints {
		if api[path+" 503"] == 0 || api[path+" 400"] == 0 || api[path+" 503 without Retry-After"] > 0 || api[path+" other"] > 0 {
			t.Errorf("%s during the burst: %v; want 503s with Retry-After (shed), and 400s (admitted, the body refused), nothing else", path, api)
		}
	}
	shed := 0
	for status, n := range burst.Statuses {
		switch {
		case status == "200":
		case strings.HasPrefix(status, "503 "):
			shed += n
		default:
			t.Errorf("burst: %d answers %q; want only 200 and 503", n, status)
		}
	}
	t.Logf("burst: %d entries, %d logged, %d shed; accepted p50 %.0f ms p99 %.0f ms; 503s %+v",
		burst.Entries, burst.EntriesOK, shed, burst.Latency.P50, burst.Latency.P99, burst.RefusedLatency)
	if shed < burst.Entries/4 || burst.EntriesOK == 0 || burst.EntriesOK+shed != burst.Entries {
		t.Errorf("burst: %d of %d entries logged, %d shed; want some of each, and shedding for a quarter at least", burst.EntriesOK, burst.Entries, shed)
	}
	if r := burst.RefusedLatency; r == nil || int(r.Count) != shed || burst.RefusedWithoutRetryAfter != 0 {
		t.Errorf("burst: 503 latencies %+v, %d without Retry-After; want %d, all with Retry-After", r, burst.RefusedWithoutRetryAfter, shed)
	} else if r.P99 > 500 {
		t.Errorf("burst: 503s p99 %.0f ms; want them fast (< 500 ms): shed before any work", r.P99)
	}
	// The accepted wait for a checkpoint (200 ms) and their receipt, not
	// behind the refused.
	if burst.Latency.P99 > 2000 {
		t.Errorf("burst: accepted p99 %.0f ms; want it bounded (< 2 s)", burst.Latency.P99)
	}
	if burst.ReceiptsVerified != burst.EntriesOK || burst.ReceiptsFailed != 0 {
		t.Errorf("burst: %d receipts verified, %d failed, of %d", burst.ReceiptsVerified, burst.ReceiptsFailed, burst.EntriesOK)
	}
	metrics := scrape(t, srv.url)
	if n, ok := metricValue(metrics, "vesperlog_admission_shed_total", `log="vetting"`); !ok || n == 0 {
		t.Errorf("vesperlog_admission_shed_total{log=\"vetting\"} is %v (exported: %v); want the shed requests", n, ok)
	}

	// After the burst: served normally, every receipt verifies.
	after := runLoad(t, load, dir, "-target", srv.url, "-key", "va.jwk", "-rate", "40", "-duration", "2s", "-verify", "1")
	if after.Entries != 80 || after.EntriesOK != 80 || after.Statuses["200"] != 80 || after.ReceiptsVerified != 80 {
		t.Errorf("after the burst: %d of %d logged, answers %v, %d receipts verified; want 80 of 80, all 200, all verified",
			after.EntriesOK, after.Entries, after.Statuses, after.ReceiptsVerified)
	}
	for _, path := range verifyEndpoints {
		if code := postStatus(t, srv.url+path); code != http.StatusBadRequest {
			t.Errorf("%s after the burst: %d; want 400 (admitted, the body refused)", path, code)
		}
	}
	size := strings.Split(string(httpGet200(t, srv.url+"/vetting/checkpoint")), "\n")[1]
	if want := strconv.Itoa(burst.EntriesOK + after.EntriesOK); size != want {
		t.Errorf("the log has %s entries; vesperload logged %s (shed requests must log nothing)", size, want)
	}

	srv.stop(t)
	logs := srv.stderr.String()
	if !strings.Contains(logs, "shedding load") || strings.Count(logs, "shedding load") > 3 {
		t.Errorf("the server's log has %d \"shedding load\" lines; want a summary (1 per 10 s)", strings.Count(logs, "shedding load"))
	}
	if strings.Contains(logs, "The log is overloaded") || strings.Contains(logs, "Internal server error") {
		t.Errorf("shed requests were logged one by one, or as server errors:\n%s", logs)
	}
}

// verifyEndpoints are the verification endpoints, which admission control
// bounds with the submissions.
var verifyEndpoints = []string{"/api/verify-vetted-info", "/api/verify-passport"}

// postVerifyAPI posts an empty JSON object to each of verifyEndpoints every
// 10 ms until stop closes, and counts the answers by path and kind. It
// runs on its own goroutine, so it reports rather than fails.
func postVerifyAPI(url string, stop <-chan struct{}) map[string]int {
	counts := map[string]int{}
	c := &http.Client{Timeout: 10 * time.Second}
	for {
		select {
		case <-stop:
			return counts
		case <-time.After(10 * time.Millisecond):
		}
		for _, path := range verifyEndpoints {
			resp, err := c.Post(url+path, "application/json", strings.NewReader("{}"))
			if err != nil {
				counts[path+" other"]++
				continue
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
				counts[path+" 503 without Retry-After"]++
			case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusBadRequest:
				counts[path+" "+strconv.Itoa(resp.StatusCode)]++
			default:
				counts[path+" other"]++
			}
		}
	}
}

// postStatus posts an empty JSON object to url and returns the status.
func postStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
