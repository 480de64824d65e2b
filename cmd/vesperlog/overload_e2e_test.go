package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestOverloadSheds drives the real vesperlog, with a small -max-inflight,
// well past what it admits, with the real vesperload for a few seconds
// (issue 15: overload answers fast 503s instead of letting everyone's
// latency grow). The shed requests get 503 with Retry-After, quickly; the
// accepted ones keep a bounded latency and verify; nothing shed is logged,
// the shedding is counted in /metrics and summarized in the server's log,
// not logged per request; and after the burst the server serves normally.
func TestOverloadSheds(t *testing.T) {
	server, cli := binaries(t)
	load, _ := loadBinaries(t)
	dir := t.TempDir()
	srv := startServer(t, server, dir, "-max-inflight", "40")
	newAgent(t, cli, dir)
	waitAgents(t, srv.url, "va")
	pid := strconv.Itoa(srv.cmd.Process.Pid)

	// 40 entries in flight with a 200 ms checkpoint interval take a few
	// hundred a second at most: 800/s is well past it.
	burst := runLoad(t, load, dir, "-target", srv.url, "-key", "va.jwk", "-rate", "800", "-duration", "4s",
		"-max-inflight", "4000", "-verify", "1", "-pid", pid)
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
