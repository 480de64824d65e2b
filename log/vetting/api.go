package vetting

import "github.com/vesperlog/vesperlog/log/problem"

// The JSON bodies of the vetting log's HTTP API (see log/vetting/server).

// AddResponse is the JSON answer to an add, and one item of an add-batch.
type AddResponse struct {
	Index     uint64           `json:"index"`
	Duplicate bool             `json:"duplicate"`
	Receipt   string           `json:"receipt,omitempty"`
	Problem   *problem.Details `json:"problem,omitempty"`
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
