package passport

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Bounds of FetchX5U.
const (
	MaxX5U         = 64 << 10
	x5uTimeout     = 5 * time.Second
	x5uMaxRedirect = 3
)

// FetchX5U returns an Options.FetchX5U that fetches a chain over rt
// (nil: http.DefaultTransport): an https URL only, following at most 3
// redirects, each https (a redirect cannot downgrade it), at most MaxX5U
// bytes within 5 seconds, as PEM or as DER certificates back to back.
// Verify calls it only for a PASSporT without x5c; a server should not
// set it at all, since x5u is a URL of the caller's choosing (SSRF).
func FetchX5U(rt http.RoundTripper) func(ctx context.Context, u string) ([][]byte, error) {
	c := &http.Client{
		Transport: rt,
		Timeout:   x5uTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" || len(via) >= x5uMaxRedirect {
				return fmt.Errorf("x5u redirected to %s: only up to %d https redirects are followed", req.URL.Redacted(), x5uMaxRedirect)
			}
			return nil
		},
	}
	return func(ctx context.Context, u string) ([][]byte, error) {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" {
			return nil, fmt.Errorf("x5u %q is not an https URL", u)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("x5u: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("x5u %s: %s", u, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxX5U+1))
		if err != nil {
			return nil, fmt.Errorf("x5u %s: %w", u, err)
		}
		if len(b) > MaxX5U {
			return nil, fmt.Errorf("x5u %s: over %d bytes", u, MaxX5U)
		}
		if chain, err := ParsePEMChain(b); err == nil {
			return chain, nil
		}
		certs, err := x509.ParseCertificates(b)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("x5u %s is neither a PEM nor a DER certificate chain", u)
		}
		var chain [][]byte
		for _, c := range certs {
			chain = append(chain, c.Raw)
		}
		return chain, nil
	}
}

// ParsePEMChain returns the DER certificates of a PEM chain, in order
// (leaf first for x5c), each of which must parse; anything but
// CERTIFICATE blocks is refused.
func ParsePEMChain(b []byte) ([][]byte, error) {
	var chain [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM %s where a CERTIFICATE belongs", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, err
		}
		chain = append(chain, blk.Bytes)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return chain, nil
}
