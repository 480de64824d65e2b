package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rawSender posts opaque entries to a Tessera-style POST /add (the answer
// is the index, in decimal) and, with watch, times each entry until a
// checkpoint covers it.
type rawSender struct {
	hc   *http.Client
	base string
	size int

	mu      sync.Mutex // guards the fields below
	addHist Histogram  // due to the index's answer
	hist    Histogram  // due to the covering checkpoint
	pending map[uint64]time.Time
	covered uint64 // the size of the latest checkpoint seen
}

func (s *rawSender) send(ctx context.Context, i int, start time.Time) []outcome {
	entry := make([]byte, s.size)
	rand.Read(entry)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/add", bytes.NewReader(entry))
	if err != nil {
		return []outcome{{status: "no answer: " + err.Error(), entries: 1}}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return []outcome{{status: "no answer: " + errClass(err), entries: 1}}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if err != nil {
		return []outcome{{status: "no answer: " + errClass(err), entries: 1}}
	}
	if resp.StatusCode != http.StatusOK {
		// Tessera's conformance server answers every error with 500 and
		// the error's text: its first words tell pushback from the rest.
		return []outcome{{status: statusOf(resp.StatusCode, "", errText(body)), entries: 1}}
	}
	idx, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
	if err != nil {
		return []outcome{{status: "200, not an index", entries: 1}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addHist.Record(time.Since(start))
	if idx < s.covered {
		s.hist.Record(time.Since(start))
	} else {
		s.pending[idx] = start
	}
	return []outcome{{status: "200", entries: 1, ok: 1}}
}

// checkpointSize reads the tree size, the second line of the checkpoint.
func checkpointSize(ctx context.Context, hc *http.Client, base string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/checkpoint", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/checkpoint: %s", base, resp.Status)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 3 {
		return 0, fmt.Errorf("GET %s/checkpoint: not a checkpoint", base)
	}
	return strconv.ParseUint(lines[1], 10, 64)
}

// watch polls the checkpoint every poll until ctx ends, and records the
// latency of each pending entry the new size covers. A failed poll is
// retried at the next tick.
func (s *rawSender) watch(ctx context.Context, poll time.Duration) {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if n, err := checkpointSize(ctx, s.hc, s.base); err == nil {
			s.observe(n, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *rawSender) observe(size uint64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size <= s.covered {
		return
	}
	s.covered = size
	for idx, start := range s.pending {
		if idx < size {
			s.hist.Record(now.Sub(start))
			delete(s.pending, idx)
		}
	}
}

// uncovered is the number of entries no checkpoint has covered yet.
func (s *rawSender) uncovered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// errText is the start of an error answer's text, short enough that
// answers of one cause count together.
func errText(body []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if len(line) > 60 {
		line = line[:60]
	}
	return strings.ToValidUTF8(line, "?")
}
