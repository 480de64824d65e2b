package load

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/receipts"
)

// Latency is a histogram's summary, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{h.Count(), ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Max())}
}

// Report is what a run measured; vesperload -json prints it.
type Report struct {
	Mode        string  `json:"mode"` // "open" or "closed", then ", raw" or ", ct" in those modes
	Target      string  `json:"target"`
	Batch       int     `json:"batch"`
	RateOffered float64 `json:"rate_offered,omitempty"` // requests/s (open loop)
	Concurrency int     `json:"concurrency,omitempty"`
	// Seconds is the whole run, to the last answer; SendSeconds the window
	// the rates are over (open loop: to when the last request was due).
	Seconds     float64 `json:"seconds"`
	SendSeconds float64 `json:"send_seconds"`
	Requests    int     `json:"requests"`
	Dropped     int     `json:"dropped"` // open loop: refused by the in-flight bound, never sent
	// RateAchieved is requests sent per second of the sending window;
	// EntriesPerSecond counts the entries logged.
	RateAchieved     float64 `json:"rate_achieved"`
	Entries          int     `json:"entries"`
	EntriesOK        int     `json:"entries_ok"`
	EntriesPerSecond float64 `json:"entries_per_second"`
	// Latency is from when a request was due to its receipts (vetting), to
	// the first checkpoint that covers the entry (raw), or to the SCT (ct);
	// AddLatency, raw only, is to the index's answer.
	Latency    Latency  `json:"latency"`
	AddLatency *Latency `json:"add_latency,omitempty"`
	// RefusedLatency times the 503 answers (vetting, ct), of which
	// RefusedWithoutRetryAfter had no Retry-After.
	RefusedLatency           *Latency `json:"refused_latency,omitempty"`
	RefusedWithoutRetryAfter int      `json:"refused_without_retry_after,omitempty"`
	// Uncovered (raw) is entries no checkpoint covered within the wait.
	Uncovered int `json:"uncovered,omitempty"`
	// Statuses counts entries by answer: "200", "503 <problem type or
	// title>", "200, item 403 <...>" (a batch item's problem), "no answer:
	// timeout".
	Statuses         map[string]int `json:"statuses"`
	ReceiptsVerified int            `json:"receipts_verified"`
	ReceiptsFailed   int            `json:"receipts_failed"`
	Failures         []string       `json:"failures,omitempty"` // the first few
	PoolExhausted    bool           `json:"pool_exhausted,omitempty"`
	// Server figures, with -pid: CPU time during the run, per entry logged,
	// and RSS at the end.
	ServerCPUSeconds    float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUMsPerEntry float64 `json:"server_cpu_ms_per_entry,omitempty"`
	ServerRSSBytes      uint64  `json:"server_rss_bytes,omitempty"`
	// ServerRSSAnonBytes is the anonymous part of the RSS (the rest is
	// file-backed: mapped files, such as a dedup store's tables).
	ServerRSSAnonBytes uint64 `json:"server_rss_anon_bytes,omitempty"`
}

// Run checks c, prepares the run (pre-signs statements, fetches the
// trust document), drives the load and verifies the sampled receipts.
// Log progress goes to progress. agents sign the statements (not raw).
func Run(ctx context.Context, c Config, agents []Agent, pool int, progress io.Writer) (*Report, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(c.Target, "/")
	hc := newHTTPClient(&c)
	r := &Report{Target: base, Batch: c.Batch, RateOffered: c.Rate, Concurrency: c.Concurrency, Statuses: map[string]int{}}
	r.Mode = "closed"
	if c.Rate > 0 {
		r.Mode = "open"
	}
	limit := c.maxRequests()
	if limit == 0 {
		limit = max(pool/c.Batch, 1)
	}

	var s sender
	var vs *vettingSender
	var rs *rawSender
	var cs *ctSender
	var trust receipts.Trust
	var digests [][32]byte
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan struct{})
	switch {
	case c.CT:
		close(watched)
		r.Mode += ", ct"
		fmt.Fprintf(progress, "issuing %d certificates\n", limit)
		chains, err := c.Chains(limit)
		if err != nil {
			return nil, fmt.Errorf("issuing certificates: %w", err)
		}
		bodies, err := addChainBodies(chains)
		if err != nil {
			return nil, err
		}
		cs = &ctSender{hc: hc, url: base + "/ct/v1/add-chain", bodies: bodies}
		s = cs
	case c.Raw:
		r.Mode += ", raw"
		rs = &rawSender{hc: hc, base: base, size: c.RawSize, pending: map[uint64]time.Time{}}
		n, err := checkpointSize(ctx, hc, base)
		if err != nil {
			return nil, fmt.Errorf("reading the target's checkpoint: %w", err)
		}
		rs.covered = n
		go func() { defer close(watched); rs.watch(watchCtx, c.Poll) }()
		s = rs
	default:
		close(watched)
		if c.Verify > 0 {
			conf, err := client.FetchConfiguration(ctx, hc, base)
			if err != nil {
				return nil, fmt.Errorf("fetching the trust document: %w", err)
			}
			if trust, err = conf.Trust(); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(progress, "pre-signing %d statements with %d agent keys\n", limit*c.Batch, len(agents))
		sts, ds, err := Presign(agents, limit*c.Batch)
		if err != nil {
			return nil, err
		}
		digests = ds
		vs = &vettingSender{c: client.NewVetting(base+"/vetting", hc), batch: c.Batch, statements: sts, verify: c.Verify}
		s = vs
	}

	var cpu0 float64
	if c.PID != 0 {
		var err error
		if cpu0, err = cpuSeconds(c.PID); err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
	}
	fmt.Fprintf(progress, "running %s loop against %s\n", r.Mode, base)
	t, dropped, took, window := drive(ctx, &c, s, limit)
	r.Seconds, r.SendSeconds = took.Seconds(), window.Seconds()
	r.Requests, r.Dropped, r.Entries, r.EntriesOK = t.requests, dropped, t.entries, t.ok
	r.Statuses = t.statuses
	r.PoolExhausted = c.Duration > 0 && c.Count == 0 && c.Rate == 0 && t.requests >= limit

	switch {
	case c.CT:
		cs.report(r)
	case c.Raw:
		// Wait (bounded) for a checkpoint to cover what was added.
		deadline := time.Now().Add(max(30*time.Second, 20*c.Poll))
		for rs.uncovered() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(c.Poll)
		}
		stopWatch()
		<-watched
		r.Uncovered = rs.uncovered()
		rs.mu.Lock()
		r.Latency, r.AddLatency = summarize(&rs.hist), new(Latency)
		*r.AddLatency = summarize(&rs.addHist)
		rs.mu.Unlock()
	default:
		vs.report(r)
		vs.mu.Lock()
		sampled := vs.sampled
		vs.mu.Unlock()
		if c.Verify > 0 {
			ok, failures := verifyReceipts(trust, digests, sampled)
			r.ReceiptsVerified, r.ReceiptsFailed = ok, len(failures)
			r.Failures = failures[:min(len(failures), 5)]
		}
	}
	if c.PID != 0 {
		cpu1, err := cpuSeconds(c.PID)
		if err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
		r.ServerCPUSeconds = cpu1 - cpu0
		if r.EntriesOK > 0 {
			r.ServerCPUMsPerEntry = 1000 * r.ServerCPUSeconds / float64(r.EntriesOK)
		}
		if r.ServerRSSBytes, r.ServerRSSAnonBytes, err = memory(c.PID); err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
	}
	if window > 0 {
		r.RateAchieved = float64(r.Requests) / window.Seconds()
		r.EntriesPerSecond = float64(r.EntriesOK) / window.Seconds()
	}
	return r, nil
}

// WriteSummary writes r for a person to read.
func (r *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "%s loop, batch %d, against %s, %.1f s sending, %.1f s to the last answer\n", r.Mode, r.Batch, r.Target, r.SendSeconds, r.Seconds)
	if r.RateOffered > 0 {
		fmt.Fprintf(w, "offered  %.0f requests/s; dropped %d (in-flight bound)\n", r.RateOffered, r.Dropped)
	} else {
		fmt.Fprintf(w, "concurrency %d\n", r.Concurrency)
	}
	fmt.Fprintf(w, "achieved %.0f requests/s, %.0f entries/s logged (%d of %d entries)\n", r.RateAchieved, r.EntriesPerSecond, r.EntriesOK, r.Entries)
	to, receipts := "receipt", true
	switch {
	case r.AddLatency != nil:
		to, receipts = "covering checkpoint", false
	case strings.HasSuffix(r.Mode, ", ct"):
		to, receipts = "SCT", false
	}
	l := r.Latency
	fmt.Fprintf(w, "latency to the %s: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d)\n", to, l.P50, l.P90, l.P99, l.Max, l.Count)
	if a := r.AddLatency; a != nil {
		fmt.Fprintf(w, "latency to the index: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; uncovered %d\n", a.P50, a.P90, a.P99, a.Max, r.Uncovered)
	}
	if a := r.RefusedLatency; a != nil {
		fmt.Fprintf(w, "latency of the 503s: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d, %d without Retry-After)\n", a.P50, a.P90, a.P99, a.Max, a.Count, r.RefusedWithoutRetryAfter)
	}
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %7d  %s\n", r.Statuses[k], k)
	}
	if receipts {
		fmt.Fprintf(w, "receipts verified %d, failed %d\n", r.ReceiptsVerified, r.ReceiptsFailed)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	if r.PoolExhausted {
		fmt.Fprintln(w, "the run used every pre-signed statement before its duration (raise -pool)")
	}
	if r.ServerCPUSeconds > 0 || r.ServerRSSBytes > 0 {
		fmt.Fprintf(w, "server CPU %.2f s, %.3f ms per entry; RSS %.0f MiB (anonymous %.0f MiB)\n", r.ServerCPUSeconds, r.ServerCPUMsPerEntry,
			float64(r.ServerRSSBytes)/(1<<20), float64(r.ServerRSSAnonBytes)/(1<<20))
	}
}
