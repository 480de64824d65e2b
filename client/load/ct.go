package load

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"time"
)

// ctSender posts certificate chains to a static-ct-api (RFC 6962) log's
// add-chain, and times each to its SCT. Any such log will do: vesperlog's
// STI-CT log, or another implementation on the same chains.
type ctSender struct {
	hc     *http.Client
	url    string   // the add-chain endpoint
	bodies [][]byte // add-chain requests, one per request index
	timings
}

// addChainBodies encodes chains as add-chain requests (RFC 6962 §4.1).
func addChainBodies(chains [][][]byte) ([][]byte, error) {
	bodies := make([][]byte, len(chains))
	for i, c := range chains {
		b, err := json.Marshal(struct {
			Chain [][]byte `json:"chain"`
		}{c})
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	return bodies, nil
}

func (s *ctSender) send(ctx context.Context, i int, start time.Time) []outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(s.bodies[i]))
	if err != nil {
		return []outcome{{status: "no answer: " + err.Error(), entries: 1}}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return []outcome{{status: "no answer: " + errClass(err), entries: 1}}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err != nil {
		return []outcome{{status: "no answer: " + errClass(err), entries: 1}}
	}
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusServiceUnavailable {
			s.refusal(took, resp.Header.Get("Retry-After") != "")
		}
		var p struct{ Type, Title string }
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" && json.Unmarshal(body, &p) == nil {
			return []outcome{{status: statusOf(resp.StatusCode, p.Type, p.Title), entries: 1}}
		}
		return []outcome{{status: statusOf(resp.StatusCode, "", errText(body)), entries: 1}}
	}
	// An SCT (RFC 6962 §4.1): a log ID and a signature at least.
	var sct struct {
		ID        []byte `json:"id"`
		Signature []byte `json:"signature"`
	}
	if json.Unmarshal(body, &sct) != nil || len(sct.ID) != 32 || len(sct.Signature) == 0 {
		return []outcome{{status: "200, not an SCT", entries: 1}}
	}
	s.answer(took)
	return []outcome{{status: "200", entries: 1, ok: 1}}
}
