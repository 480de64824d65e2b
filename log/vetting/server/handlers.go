package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// Request body limits: one statement, and a full batch of them with JSON framing.
const (
	maxAddBody   = vetting.MaxStatementSize + 64
	maxBatchBody = MaxBatch*(vetting.MaxStatementSize+8) + 1024
)

// Handle registers the vetting API of s under prefix (for example "/vetting").
func (s *Service) Handle(mux *http.ServeMux, prefix string) {
	add, addBatch := s.handleAdd, s.handleAddBatch
	if st := s.cfg.Idempotency; st != nil {
		// The endpoint names records without the prefix: the same on
		// every front end, whatever its mux.
		add = st.Wrap(Name+"/v1/add", maxAddBody, add)
		addBatch = st.Wrap(Name+"/v1/add-batch", maxBatchBody, addBatch)
	}
	mux.HandleFunc("POST "+prefix+"/v1/add", add)
	mux.HandleFunc("POST "+prefix+"/v1/add-batch", addBatch)
	mux.HandleFunc("GET "+prefix+"/v1/receipt/{index}", s.handleReceipt)
	mux.HandleFunc("GET "+prefix+"/v1/lookup/{agent}/{digest}", s.handleLookup)
	mux.HandleFunc("GET "+prefix+"/v1/agents", s.handleAgents)
}

func (s *Service) handleAdd(w http.ResponseWriter, r *http.Request) {
	release, err := s.admit(w, r, 1)
	if err != nil {
		return
	}
	defer release()
	body, err := problem.ReadBody(w, r, "application/jose", maxAddBody)
	if err != nil {
		s.cfg.Metrics.Submission(r.Context(), Name, problem.Class(err), "")
		problem.Write(w, r, err)
		return
	}
	res, err := s.Submit(r.Context(), []string{strings.TrimSpace(string(body))})
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, vetting.AddResponse{Index: res[0].Index, Duplicate: res[0].Duplicate, Receipt: res[0].Receipt}.Wire())
}

func (s *Service) handleAddBatch(w http.ResponseWriter, r *http.Request) {
	req := &vetting.BatchRequest{}
	body, err := problem.ReadBody(w, r, "application/json", maxBatchBody)
	if err == nil {
		if req, err = vetting.ParseBatchRequest(body); err != nil {
			err = fmt.Errorf("%w: body is not {\"statements\": [...]}: %v", problem.ErrBadRequest, err)
		}
	}
	if err != nil {
		s.cfg.Metrics.Submission(r.Context(), Name, problem.Class(err), "")
		problem.Write(w, r, err)
		return
	}
	// A batch over MaxBatch counts as MaxBatch: Submit refuses it (413).
	release, err := s.admit(w, r, min(len(req.Statements), MaxBatch))
	if err != nil {
		return
	}
	defer release()
	res, err := s.Submit(r.Context(), req.Statements)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if r.Context().Err() != nil {
		// The client went away: one line for the request, not one per
		// entry, and no answer anyone reads.
		problem.Write(w, r, r.Context().Err())
		return
	}
	out := vetting.BatchResponse{Entries: make([]vetting.AddResponse, len(res))}
	// Failures are logged once per kind of problem, not once per entry: a
	// batch of 1,000 pushed back is one line, naming its first entry.
	type kind struct {
		status int
		title  string
	}
	var kinds []kind
	first := map[kind]int{}
	count := map[kind]int{}
	failed, overloaded := 0, false
	for i, x := range res {
		out.Entries[i] = vetting.AddResponse{Index: x.Index, Duplicate: x.Duplicate, Receipt: x.Receipt}
		if x.Err != nil {
			p := problem.For(x.Err)
			out.Entries[i] = vetting.AddResponse{Problem: &p}
			k := kind{p.Status, p.Title}
			if _, seen := first[k]; !seen {
				first[k] = i
				kinds = append(kinds, k)
			}
			count[k]++
			failed++
			overloaded = overloaded || p.Status == http.StatusServiceUnavailable
		}
	}
	for _, k := range kinds {
		i := first[k]
		problem.Log(r, *out.Entries[i].Problem, "entries", count[k], "first_entry", i, "agent", res[i].Agent)
	}
	// A batch in which nothing succeeded, for one reason, is that
	// problem: a client that checks only the status must not see 200.
	if failed == len(res) && len(kinds) == 1 {
		problem.WriteDetails(w, *out.Entries[0].Problem)
		return
	}
	if overloaded {
		w.Header().Set("Retry-After", problem.RetryAfter)
	}
	problem.WriteJSON(w, out.Wire())
}

// admit admits a request of n entries, or answers it 503 with
// Retry-After, counting each entry as overloaded, and returns the error.
// The refusal is not logged per request: Admission logs a summary and
// counts it, and logging every one would spend the CPU shedding saves.
func (s *Service) admit(w http.ResponseWriter, r *http.Request, n int) (func(), error) {
	release, err := s.cfg.Admission.Admit(r.Context(), Name, n)
	if err != nil {
		for range n {
			s.cfg.Metrics.Submission(r.Context(), Name, problem.Class(err), "")
		}
		problem.WriteDetails(w, problem.For(err))
	}
	return release, err
}

func (s *Service) handleReceipt(w http.ResponseWriter, r *http.Request) {
	idx, err := vlog.ParseIndex(r.PathValue("index"))
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	rc, err := s.Receipt(r.Context(), idx)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, vetting.ReceiptResponse{Index: idx, Receipt: rc})
}

func (s *Service) handleLookup(w http.ResponseWriter, r *http.Request) {
	var agent, digest [32]byte
	for _, f := range []struct {
		name string
		out  *[32]byte
	}{{"agent", &agent}, {"digest", &digest}} {
		b, err := base64.RawURLEncoding.Strict().DecodeString(r.PathValue(f.name))
		if err != nil || len(b) != 32 {
			problem.Write(w, r, fmt.Errorf("%w: %s must be 32 bytes, base64url without padding", problem.ErrBadRequest, f.name))
			return
		}
		copy(f.out[:], b)
	}
	idx, err := s.Lookup(r.Context(), agent, digest)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, vetting.LookupResponse{Index: idx})
}

func (s *Service) handleAgents(w http.ResponseWriter, r *http.Request) {
	problem.WriteJSON(w, s.cfg.Agents())
}
