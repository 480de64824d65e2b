package log

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/witness/policy"
	"golang.org/x/mod/sumdb/note"
)

// maxWitnessRequest bounds the add-checkpoint body the recorder reads to
// find the log's origin: an old-size line, at most 63 proof hashes and a
// checkpoint with its signatures fit many times over.
const maxWitnessRequest = 64 << 10

// WitnessRecorder is the HTTP transport Tessera asks witnesses through
// (storage.Config.WitnessClient). It remembers each witness's last answer
// for each log, so that a submission that waited in vain for a cosigned
// checkpoint can say which witness refused what, and why: Tessera itself
// only logs it. One recorder serves every log of a process.
type WitnessRecorder struct {
	next http.RoundTripper
	now  func() time.Time

	// mu guards last, names and metrics: Tessera asks witnesses
	// concurrently, and Observe may run while it does.
	mu   sync.Mutex
	last map[witnessCall]witnessAnswer
	// names labels the metrics of the calls that Observe named: log and
	// witness names from the configuration, so that no label comes from
	// elsewhere. Calls it does not name are recorded but not counted.
	names   map[witnessCall]witnessNames
	metrics *Metrics
}

type witnessNames struct {
	log, witness string
	verifier     note.Verifier // the witness's key, to check its answers
}

// witnessCall is one witness (its add-checkpoint URL) asked about one log.
type witnessCall struct{ url, origin string }

type witnessAnswer struct {
	at      time.Time
	status  int    // 0 when no answer came
	invalid bool   // a 200 whose cosignature does not verify
	detail  string // the answer's first line, or why none came or is no good
}

// NewWitnessRecorder returns a recorder that sends requests through next
// (http.DefaultTransport if nil).
func NewWitnessRecorder(next http.RoundTripper) *WitnessRecorder {
	if next == nil {
		next = http.DefaultTransport
	}
	return &WitnessRecorder{next: next, now: time.Now, last: make(map[witnessCall]witnessAnswer), names: make(map[witnessCall]witnessNames)}
}

// Observe has the recorder count, in m, the requests about origin (the log
// called logName) to each witness of p, labelled by their names.
func (r *WitnessRecorder) Observe(m *Metrics, origin, logName string, p *policy.Policy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics = m
	for _, w := range p.Witnesses() {
		if u, err := addCheckpointURL(w.URL); err == nil {
			r.names[witnessCall{url: u, origin: origin}] = witnessNames{log: logName, witness: w.Name, verifier: w.Verifier}
		}
	}
}

// addCheckpointURL is where Tessera asks a witness whose tlog-witness
// submission prefix is prefix.
func addCheckpointURL(prefix string) (string, error) {
	u, err := url.Parse(prefix)
	if err != nil {
		return "", err
	}
	return u.JoinPath("/add-checkpoint").String(), nil
}

// Cosigned returns the names of p's witnesses whose last answer about
// origin was a cosignature given at or after since, and whether any
// witness of p was asked about origin since then.
func (r *WitnessRecorder) Cosigned(origin string, p *policy.Policy, since time.Time) (names []string, asked bool) {
	for _, a := range r.Answers(origin, p) {
		if !a.Asked || a.At.Before(since) {
			continue
		}
		asked = true
		if a.OK() {
			names = append(names, a.Witness.Name)
		}
	}
	return names, asked
}

// Client is the client to give Tessera.
func (r *WitnessRecorder) Client() *http.Client { return &http.Client{Transport: r} }

// RoundTrip sends req and records the answer under the request's URL and
// the origin of the checkpoint it carries.
func (r *WitnessRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxWitnessRequest+1))
		if err != nil {
			req.Body.Close()
			return nil, fmt.Errorf("reading witness request: %w", err)
		}
		body = b
		rest := req.Body
		req = req.Clone(req.Context())
		if len(b) > maxWitnessRequest {
			// Too long to read here: sent on whole, not recorded by origin.
			req.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(b), rest), rest}
			body = nil
		} else {
			rest.Close()
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			req.ContentLength = int64(len(body))
		}
	}
	call := witnessCall{url: req.URL.String(), origin: requestOrigin(body)}
	start := r.now()
	resp, err := r.next.RoundTrip(req)
	if err != nil && errors.Is(req.Context().Err(), context.Canceled) {
		// Tessera no longer wanted the answer (the quorum was met without
		// it, or the log is stopping): that says nothing of the witness.
		return nil, err
	}
	if err != nil {
		r.record(call, witnessAnswer{detail: err.Error()}, start)
		return nil, err
	}
	// Tessera reads a witness's whole answer: bound it (a cosignature
	// line, even ML-DSA-44, is a few KiB).
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxWitnessAnswer), resp.Body}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxWitnessAnswer))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(peek), resp.Body}
	a := witnessAnswer{status: resp.StatusCode}
	switch {
	case resp.StatusCode != http.StatusOK:
		a.detail = answerDetail(peek)
	case body != nil:
		// A 200 counts only if its cosignature verifies, as Tessera
		// checks before it uses it.
		if err := r.verify(call, body, peek); err != nil {
			a.invalid, a.detail = true, err.Error()
		}
	}
	r.record(call, a, start)
	return resp, nil
}

// maxWitnessAnswer bounds a witness's answer.
const maxWitnessAnswer = 64 << 10

// verify checks that answer holds a valid cosignature of the checkpoint in
// an add-checkpoint body by the witness Observe named for the call; with
// no such witness known, it cannot tell, and does not refuse.
func (r *WitnessRecorder) verify(c witnessCall, body, answer []byte) error {
	r.mu.Lock()
	n, ok := r.names[c]
	r.mu.Unlock()
	if !ok || n.verifier == nil {
		return nil
	}
	_, cp, found := bytes.Cut(body, []byte("\n\n"))
	if !found {
		return errors.New("no checkpoint in the request")
	}
	if _, err := note.Open(append(append([]byte(nil), cp...), answer...), note.VerifierList(n.verifier)); err != nil {
		return fmt.Errorf("answered 200, but not with a cosignature that verifies: %v", err)
	}
	return nil
}

// answerDetail is what a witness said when it refused: the detail (or
// title) of an RFC 9457 problem, else the first line of the answer.
func answerDetail(b []byte) string {
	var p struct{ Title, Detail string }
	if json.Unmarshal(b, &p) == nil && (p.Detail != "" || p.Title != "") {
		if p.Detail != "" {
			return strings.ToValidUTF8(p.Detail, "?")
		}
		return strings.ToValidUTF8(p.Title, "?")
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.ToValidUTF8(line, "?")
}

func (r *WitnessRecorder) record(c witnessCall, a witnessAnswer, start time.Time) {
	a.at = r.now()
	r.mu.Lock()
	r.last[c] = a
	n, named := r.names[c]
	m := r.metrics
	r.mu.Unlock()
	if named {
		result := witnessCosigned
		switch {
		case a.invalid:
			result = witnessInvalid
		case a.status == http.StatusConflict:
			// The log guessed the witness's old size wrong, as after a
			// restart; Tessera asks again at once.
			result = witnessConflict
		case a.status == 0:
			result = witnessUnreachable
		case a.status != http.StatusOK:
			result = witnessRefused
		}
		m.witnessAnswer(n.log, n.witness, result, a.at.Sub(start))
	}
}

// requestOrigin is the origin line of the checkpoint in a tlog-witness
// add-checkpoint body: the first line after the first blank line.
func requestOrigin(body []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxWitnessRequest)
	blank := false
	for sc.Scan() {
		if blank {
			return sc.Text()
		}
		blank = sc.Text() == ""
	}
	return ""
}

// WitnessAnswer is a witness's last answer about one log, as the
// recorder saw it.
type WitnessAnswer struct {
	Witness policy.Witness
	Asked   bool      // false until the witness was first asked about the log
	At      time.Time // when the answer (or the failure to get one) came
	Status  int       // HTTP status; 0 when no answer came
	Invalid bool      // a 200 whose cosignature does not verify
	Detail  string    // the witness's reason when it refused, or why no answer came or is no good
}

// OK says whether the answer was a cosignature that verified.
func (a WitnessAnswer) OK() bool { return a.Asked && a.Status == http.StatusOK && !a.Invalid }

// Answers returns, for each witness of p in its order, its last answer
// about origin (a status page shows them). With p nil, it returns the
// answers of every witness asked about origin, by URL, without names.
func (r *WitnessRecorder) Answers(origin string, p *policy.Policy) []WitnessAnswer {
	var ws []policy.Witness
	r.mu.Lock()
	defer r.mu.Unlock()
	if p != nil {
		ws = p.Witnesses()
	} else {
		for c := range r.last {
			if c.origin == origin {
				ws = append(ws, policy.Witness{URL: strings.TrimSuffix(c.url, "/add-checkpoint")})
			}
		}
		slices.SortFunc(ws, func(a, b policy.Witness) int { return strings.Compare(a.URL, b.URL) })
	}
	var out []WitnessAnswer
	for _, w := range ws {
		wa := WitnessAnswer{Witness: w}
		if u, err := addCheckpointURL(w.URL); err == nil {
			if a, ok := r.last[witnessCall{url: u, origin: origin}]; ok {
				wa.Asked, wa.At, wa.Status, wa.Invalid, wa.Detail = true, a.at, a.status, a.invalid, a.detail
			}
		}
		out = append(out, wa)
	}
	return out
}

// Report says, for each witness of p, how its last answer about origin
// went wrong: refused, with the status and the witness's reason, or not
// answered; "" when every witness's last answer was a cosignature. With p
// nil, it reports every witness asked about origin, by URL.
func (r *WitnessRecorder) Report(origin string, p *policy.Policy) string {
	var parts []string
	now := r.now()
	for _, a := range r.Answers(origin, p) {
		w := "witness " + a.Witness.URL
		if a.Witness.Name != "" {
			w = fmt.Sprintf("witness %s (%s)", a.Witness.Name, a.Witness.URL)
		}
		ago := now.Sub(a.At).Round(time.Second)
		switch {
		case !a.Asked:
			parts = append(parts, w+" has not answered yet")
		case a.Status == 0:
			parts = append(parts, fmt.Sprintf("%s did not answer %s ago: %s", w, ago, a.Detail))
		case a.Status != http.StatusOK:
			parts = append(parts, fmt.Sprintf("%s refused %s ago: %d %s: %q", w, ago, a.Status, http.StatusText(a.Status), a.Detail))
		case a.Invalid:
			parts = append(parts, fmt.Sprintf("%s %s ago: %s", w, ago, a.Detail))
		}
	}
	return strings.Join(parts, "; ")
}

// WitnessRepublishInterval is how often a log with witnesses publishes its
// checkpoint again when it has not grown, asking its witnesses again: a
// checkpoint they could not cosign (they were down, or were just added)
// gets their cosignatures within this, not Tessera's default 10 minutes.
const WitnessRepublishInterval = 30 * time.Second

// NotPublished is the error of a submission whose entry no checkpoint
// meeting p covered within timeout: a 503 that says why, naming the
// witnesses that refused or did not answer when the recorder knows. what
// is what a retry gets ("receipt", "SCT").
func (l *Log) NotPublished(p *policy.Policy, timeout time.Duration, what string) error {
	if p == nil || len(p.Witnesses()) == 0 {
		return fmt.Errorf("%w: no checkpoint covering the entry was published within %s (is the log overloaded?); submit again later to get its %s",
			problem.ErrOverloaded, timeout, what)
	}
	why := "are the witnesses reachable?"
	if l.witnesses != nil {
		if r := l.witnesses.Report(l.origin, p); r != "" {
			why = r
		}
	}
	return &problem.Retry{After: WitnessRepublishInterval, Err: fmt.Errorf(
		"%w: no checkpoint covering the entry was cosigned by quorum %s within %s: %s; the entry is logged, and a submission again after the witnesses cosign gets its %s",
		problem.ErrUnwitnessed, p.Quorum(), timeout, why, what)}
}

// MeetsPolicy checks that a checkpoint of the log meets p (if set), as a
// receipt's must. If not, the log published it without its witnesses'
// quorum (they were down, or added since), and the error, a 503, says
// when to retry: the log asks them again within WitnessRepublishInterval.
func (l *Log) MeetsPolicy(p *policy.Policy, checkpoint []byte) error {
	if p == nil {
		return nil
	}
	if err := l.verified.verify(p, checkpoint); err != nil {
		why := ""
		if l.witnesses != nil {
			if r := l.witnesses.Report(l.origin, p); r != "" {
				why = " (" + r + ")"
			}
		}
		return &problem.Retry{After: WitnessRepublishInterval, Err: fmt.Errorf(
			"%w: the latest checkpoint does not meet the witness policy, so no receipt can be issued yet: %v; the log asks its witnesses again at least every %s%s",
			problem.ErrUnwitnessed, err, WitnessRepublishInterval, why)}
	}
	return nil
}

// Pending is how many entries the log has integrated but not yet
// published in a checkpoint: what a stop waits for.
func (l *Log) Pending(ctx context.Context) (uint64, error) {
	n, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return 0, err
	}
	cp, err := l.Checkpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	size, err := CheckpointSize(cp)
	if err != nil || size > n {
		return 0, err
	}
	return n - size, nil
}

// WitnessReport says how the log's witnesses last answered (Report, by
// URL), or "" without a recorder or failures.
func (l *Log) WitnessReport() string {
	if l.witnesses == nil {
		return ""
	}
	return l.witnesses.Report(l.origin, nil)
}
