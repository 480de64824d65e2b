package load

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
)

// Agent is a vetting agent's key pair, registered with the log under test.
type Agent struct {
	Public jose.JSONWebKey
	Signer crypto.Signer
}

// MaxSamples bounds the receipts kept for verification after the run (a
// receipt is a few KiB): past it, later receipts are not sampled.
const MaxSamples = 100_000

// DefaultPool is how many statements a closed-loop run for a duration
// pre-signs; the run ends early if it uses them all.
const DefaultPool = 50_000

// Presign signs n statements about random digests, round-robin over the
// agents, so that signing costs nothing during the run.
func Presign(agents []Agent, n int) (statements []string, digests [][32]byte, err error) {
	if len(agents) == 0 {
		return nil, nil, configErr("no agent keys to sign with")
	}
	statements, digests = make([]string, n), make([][32]byte, n)
	iat := uint64(time.Now().Unix())
	for i := range n {
		a := &agents[i%len(agents)]
		rand.Read(digests[i][:])
		st, err := vetting.NewStatement(&a.Public, digests[i], fmt.Sprintf("load-%d", i), iat)
		if err != nil {
			return nil, nil, err
		}
		if statements[i], err = st.Sign(a.Signer); err != nil {
			return nil, nil, fmt.Errorf("signing statement %d: %w", i, err)
		}
	}
	return statements, digests, nil
}

// vettingSender sends pre-signed statements to a vetting log.
type vettingSender struct {
	c          *client.Vetting
	batch      int
	statements []string
	verify     float64

	timings

	mu      sync.Mutex // guards sampled
	sampled []sample
}

// sample is a receipt kept for verification, with the statement it answers.
type sample struct {
	statement int
	receipt   string
}

func (s *vettingSender) send(ctx context.Context, i int, start time.Time) []outcome {
	sts := s.statements[i*s.batch : (i+1)*s.batch]
	var answers []vetting.AddResponse
	var err error
	if s.batch == 1 {
		var a *vetting.AddResponse
		if a, err = s.c.Add(ctx, sts[0]); err == nil {
			answers = []vetting.AddResponse{*a}
		}
	} else {
		var b *vetting.BatchResponse
		if b, err = s.c.AddBatch(ctx, sts); err == nil {
			answers = b.Entries
		}
	}
	took := time.Since(start)
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) {
			if ae.Status == http.StatusServiceUnavailable {
				s.refusal(took, ae.Problem.RetryAfter != 0)
			}
			return []outcome{{status: statusOf(ae.Status, ae.Problem.Type, ae.Problem.Title), entries: len(sts)}}
		}
		return []outcome{{status: "no answer: " + errClass(err), entries: len(sts)}}
	}
	s.answer(took)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outcome
	for j, a := range answers {
		if a.Problem != nil {
			out = append(out, outcome{status: "200, item " + statusOf(a.Problem.Status, a.Problem.Type, a.Problem.Title), entries: 1})
			continue
		}
		out = append(out, outcome{status: "200", entries: 1, ok: 1})
		if len(s.sampled) < MaxSamples && (s.verify >= 1 || mrand.Float64() < s.verify) {
			s.sampled = append(s.sampled, sample{i*s.batch + j, a.Receipt})
		}
	}
	return out
}

// timings are a sender's latencies to its answers and to its 503s.
type timings struct {
	mu   sync.Mutex // guards the fields below
	hist Histogram  // due to the answer
	// refused times the 503 answers; noRetryAfter counts those without
	// a Retry-After.
	refused      Histogram
	noRetryAfter int
}

func (t *timings) answer(took time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hist.Record(took)
}

func (t *timings) refusal(took time.Duration, retryAfter bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refused.Record(took)
	if !retryAfter {
		t.noRetryAfter++
	}
}

// report puts the latencies into r.
func (t *timings) report(r *Report) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Latency = summarize(&t.hist)
	if t.refused.Count() > 0 {
		r.RefusedLatency = new(Latency)
		*r.RefusedLatency = summarize(&t.refused)
		r.RefusedWithoutRetryAfter = t.noRetryAfter
	}
}

// errClass shortens a transport error to its kind, so that they count
// together.
func errClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), strings.Contains(err.Error(), "Client.Timeout"):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "connection reset"
	}
	return "transport error"
}

// verifyReceipts checks each sampled receipt offline against trust, and
// that the entry it proves is the statement that was sent.
func verifyReceipts(trust receipts.Trust, digests [][32]byte, sampled []sample) (ok int, failures []string) {
	for _, sm := range sampled {
		v, err := receipts.Verify(sm.receipt, trust)
		if err == nil {
			var leaf *vetting.Leaf
			if leaf, err = vetting.ParseLeaf(v.Entry); err == nil && leaf.Digest != digests[sm.statement] {
				err = fmt.Errorf("the receipt proves another digest than statement %d's", sm.statement)
			}
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("statement %d: %v", sm.statement, err))
			continue
		}
		ok++
	}
	return ok, failures
}
