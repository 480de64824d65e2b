package passport

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Request is the body of POST /api/verify-passport.
type Request struct {
	PASSporT    string `json:"passport,omitempty"`
	Identity    string `json:"identity,omitempty"`
	Original    string `json:"original,omitempty"`
	Disclosures map[string]struct {
		Salt  string          `json:"salt"`
		Value json.RawMessage `json:"value,omitempty"`
	} `json:"disclosures,omitempty"`
	Online bool `json:"online,omitempty"`
}

// ErrRequest is a request body that is not a well-formed Request (HTTP 400).
var ErrRequest = errors.New("bad verify-passport request")

// Response is the answer to a verified request.
type Response struct {
	Valid       bool            `json:"valid"`
	Checks      []string        `json:"checks"`
	Header      Header          `json:"header"`
	Claims      json.RawMessage `json:"claims"`
	Certificate struct {
		Subject, TNAuthList string
		NotAfter            time.Time
	} `json:"certificate"`
	SCTs []struct {
		Log       string
		Timestamp time.Time
		LeafIndex *uint64
	} `json:"scts"`
}

// VerifyRequest decodes body as a Request and verifies it with o.
func VerifyRequest(ctx context.Context, body []byte, o Options) (*Response, error) {
	return nil, errors.ErrUnsupported
}
