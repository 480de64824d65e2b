package client

import (
	"context"
	"errors"
	"net/http"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
)

// SCTProver proves online that an SCT's entry is in its STI-CT log.
type SCTProver struct {
	trust receipts.Trust
	hc    *http.Client
}

// NewSCTProver returns an SCTProver that checks logs' checkpoints against t.
func NewSCTProver(t receipts.Trust, hc *http.Client) *SCTProver {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &SCTProver{trust: t, hc: hc}
}

// ProveSCT proves that entry leafIndex of log is mtl.
func (p *SCTProver) ProveSCT(ctx context.Context, log stict.CTLog, leafIndex uint64, mtl []byte) (string, error) {
	return "", errors.ErrUnsupported
}
