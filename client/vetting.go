package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
)

// Vetting talks to a vetting log's submission API.
type Vetting struct {
	base string // the log's URL prefix, e.g. http://127.0.0.1:8080/vetting
	hc   *http.Client
}

// NewVetting returns a client of the vetting log at prefix (the url of its
// entry in the transparency configuration).
func NewVetting(prefix string, hc *http.Client) *Vetting {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Vetting{base: strings.TrimSuffix(prefix, "/"), hc: hc}
}

// Add submits one signed statement and returns the log's answer, which
// comes once the entry is covered by a published checkpoint.
func (c *Vetting) Add(ctx context.Context, statement string) (*vetting.AddResponse, error) {
	var out vetting.AddResponse
	if err := do(ctx, c.hc, http.MethodPost, c.base+"/v1/add", "application/jose", []byte(statement), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddBatch submits up to 1,000 statements in one request.
func (c *Vetting) AddBatch(ctx context.Context, statements []string) (*vetting.BatchResponse, error) {
	body, err := json.Marshal(vetting.BatchRequest{Statements: statements})
	if err != nil {
		return nil, err
	}
	var out vetting.BatchResponse
	if err := do(ctx, c.hc, http.MethodPost, c.base+"/v1/add-batch", "application/json", body, &out); err != nil {
		return nil, err
	}
	if len(out.Entries) != len(statements) {
		return nil, fmt.Errorf("add-batch: %d answers for %d statements", len(out.Entries), len(statements))
	}
	return &out, nil
}

// Receipt fetches a fresh receipt for the entry at index.
func (c *Vetting) Receipt(ctx context.Context, index uint64) (string, error) {
	var out vetting.ReceiptResponse
	if err := do(ctx, c.hc, http.MethodGet, fmt.Sprintf("%s/v1/receipt/%d", c.base, index), "", nil, &out); err != nil {
		return "", err
	}
	return out.Receipt, nil
}

// Lookup returns the index of the entry in which agent logged digest.
func (c *Vetting) Lookup(ctx context.Context, agent, digest [32]byte) (uint64, error) {
	enc := base64.RawURLEncoding.EncodeToString
	var out vetting.LookupResponse
	if err := do(ctx, c.hc, http.MethodGet, c.base+"/v1/lookup/"+enc(agent[:])+"/"+enc(digest[:]), "", nil, &out); err != nil {
		return 0, err
	}
	return out.Index, nil
}

// FetchConfiguration fetches a server's transparency configuration. Check
// it out of band before pinning it: it is what every later check trusts.
func FetchConfiguration(ctx context.Context, hc *http.Client, serverURL string) (*receipts.Configuration, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	var raw json.RawMessage
	if err := do(ctx, hc, http.MethodGet, strings.TrimSuffix(serverURL, "/")+"/.well-known/transparency-configuration", "", nil, &raw); err != nil {
		return nil, err
	}
	c, err := receipts.ParseConfiguration(raw)
	if err != nil {
		return nil, err
	}
	if _, err := c.Trust(); err != nil {
		return nil, err
	}
	return c, nil
}
