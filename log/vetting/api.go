package vetting

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/vesperlog/vesperlog/log/problem"
)

// The JSON bodies of the vetting log's HTTP API (see log/vetting/server).

// AddResponse is the JSON answer to an add, and one item of an add-batch.
type AddResponse struct {
	Index     uint64           `json:"index"`
	Duplicate bool             `json:"duplicate"`
	Receipt   string           `json:"receipt,omitempty"`
	Problem   *problem.Details `json:"problem,omitempty"`
}

// MarshalJSON writes a failed item as its problem alone: an index or a
// duplicate flag next to it would be read as a result.
func (r AddResponse) MarshalJSON() ([]byte, error) { return json.Marshal(r.Wire()) }

type (
	addResult  AddResponse // no MarshalJSON: the form of a result
	addProblem struct {
		Problem *problem.Details `json:"problem"`
	}
)

// Wire returns the value to encode for r, the same JSON as MarshalJSON
// writes. A server encodes this rather than r: encoding/json validates and
// compacts again whatever a MarshalJSON returns, a second pass over every
// receipt that was 3% of a submission's CPU.
func (r AddResponse) Wire() any {
	if r.Problem != nil {
		return addProblem{r.Problem}
	}
	return addResult(r)
}

// Wire returns the value to encode for b (see AddResponse.Wire).
func (b BatchResponse) Wire() any {
	out := struct {
		Entries []any `json:"entries"`
	}{make([]any, len(b.Entries))}
	for i := range b.Entries {
		out.Entries[i] = b.Entries[i].Wire()
	}
	return out
}

// BatchRequest is the body of an add-batch.
type BatchRequest struct {
	Statements []string `json:"statements"`
}

// BatchResponse answers an add-batch: one item per statement, in order.
type BatchResponse struct {
	Entries []AddResponse `json:"entries"`
}

// ReceiptResponse answers a receipt request.
type ReceiptResponse struct {
	Index   uint64 `json:"index"`
	Receipt string `json:"receipt"`
}

// LookupResponse answers a lookup.
type LookupResponse struct {
	Index uint64 `json:"index"`
}

// ParseBatchRequest decodes an add-batch body as strictly as a statement
// is: no unknown member, no member twice (encoding/json would keep the
// last), nothing after the object.
func ParseBatchRequest(b []byte) (*BatchRequest, error) {
	if err := noDuplicateKeys(b); err != nil {
		return nil, err
	}
	var r BatchRequest
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// noDuplicateKeys refuses JSON in which an object names a member twice.
func noDuplicateKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	var stack []map[string]bool // the keys of each open object; nil for an array
	expectKey := false
	for {
		t, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch v := t.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, map[string]bool{})
				expectKey = true
				continue
			case '[':
				stack = append(stack, nil)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if expectKey {
				if stack[len(stack)-1][v] {
					return fmt.Errorf("member %q appears twice", v)
				}
				stack[len(stack)-1][v] = true
				expectKey = false
				continue
			}
		}
		// After a value inside an object, a key comes next.
		expectKey = len(stack) > 0 && stack[len(stack)-1] != nil
	}
}
