package passport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Request is the body of POST /api/verify-passport: a PASSporT or an
// Identity header value (exactly one), the original PASSporT for an rsp,
// disclosed salts (base64url) and values of committed claims, and whether
// to prove inclusion online.
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

// maxDisclosures bounds a request's disclosures.
const maxDisclosures = 16

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

// VerifyRequest decodes body as a Request (strictly: one JSON object of
// known members, at most MaxRequest bytes) and verifies it with o, whose
// Original and Disclosures it sets from the request; o.Online is used only
// if the request asks for it, and a request that asks when o.Online is nil
// is refused. Errors: ErrRequest and ErrMalformed for the body (400), the
// other sentinels of Verify for a PASSporT that does not verify (422),
// with a Response (Valid false) that lists the checks that passed before
// the one that failed, when the PASSporT got that far.
//
// Call pattern, in an HTTP handler:
//
//	resp, err := passport.VerifyRequest(r.Context(), body, opts)
//	// err: problem+json with passport.Check(err); else 200 with resp
func VerifyRequest(ctx context.Context, body []byte, o Options) (*Response, error) {
	if len(body) > MaxRequest {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrRequest, len(body), MaxRequest)
	}
	if err := checkJSON(body); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	token := req.PASSporT
	switch {
	case (req.PASSporT == "") == (req.Identity == ""):
		return nil, fmt.Errorf("%w: give exactly one of passport and identity", ErrRequest)
	case req.Identity != "":
		token = req.Identity
	}
	o.Original = nil
	if req.Original != "" {
		orig, _, err := ParseAny(req.Original)
		if err != nil {
			return nil, fmt.Errorf("%w: original: %w", ErrRequest, err)
		}
		o.Original = orig
	}
	if len(req.Disclosures) > maxDisclosures {
		return nil, fmt.Errorf("%w: more than %d disclosures", ErrRequest, maxDisclosures)
	}
	o.Disclosures = nil
	for claim, d := range req.Disclosures {
		salt, err := b64url.DecodeString(d.Salt)
		if err != nil || len(salt) < MinSalt {
			return nil, fmt.Errorf("%w: disclosure %s: salt is not base64url of at least %d bytes", ErrRequest, claim, MinSalt)
		}
		if o.Disclosures == nil {
			o.Disclosures = map[string]Disclosure{}
		}
		o.Disclosures[claim] = Disclosure{Salt: salt, Value: d.Value}
	}
	switch {
	case req.Online && o.Online == nil:
		return nil, fmt.Errorf("%w: this verifier does not prove inclusion online", ErrRequest)
	case !req.Online:
		o.Online = nil
	}
	res, err := verify(ctx, token, o)
	if err != nil {
		if res == nil {
			return nil, err
		}
		return &Response{Checks: res.Checks, Header: res.PASSporT.Header, Claims: res.PASSporT.Payload()}, err
	}
	return res.Response(), nil
}

// Response returns r as the HTTP API's answer.
func (r *Result) Response() *Response {
	resp := &Response{Valid: true, Checks: r.Checks, Header: r.PASSporT.Header, Claims: r.PASSporT.Payload()}
	resp.Certificate.Subject = r.Leaf.Subject.String()
	resp.Certificate.TNAuthList = r.TNAuthList.String()
	resp.Certificate.NotAfter = r.Leaf.NotAfter.UTC()
	for _, s := range r.SCTs {
		e := struct {
			Log       string
			Timestamp time.Time
			LeafIndex *uint64
		}{Log: s.Log.Origin, Timestamp: time.UnixMilli(int64(s.Timestamp)).UTC()}
		if s.HasLeafIndex {
			e.LeafIndex = new(uint64)
			*e.LeafIndex = s.LeafIndex
		}
		resp.SCTs = append(resp.SCTs, e)
	}
	return resp
}
