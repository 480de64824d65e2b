package vetting

import (
	"encoding/json"

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
func (r AddResponse) MarshalJSON() ([]byte, error) {
	if r.Problem != nil {
		return json.Marshal(struct {
			Problem *problem.Details `json:"problem"`
		}{r.Problem})
	}
	type plain AddResponse
	return json.Marshal(plain(r))
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
