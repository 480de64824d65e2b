package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/vesperlog/vesperlog/log/problem"
)

// maxResponse bounds any response body read into memory. A full batch of
// receipts is the largest answer.
const maxResponse = 64 << 20

// APIError is a problem the server answered with.
type APIError struct {
	Status  int
	Problem problem.Details
}

func (e *APIError) Error() string {
	if e.Problem.Detail != "" {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Problem.Title, e.Problem.Detail, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Problem.Title, e.Status)
}

// do sends a request and decodes a JSON answer into out, or returns the
// server's problem as an *APIError.
func do(ctx context.Context, hc *http.Client, method, url, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, url, err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("%s %s: answer is over %d bytes", method, url, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if mt != "application/problem+json" || json.Unmarshal(b, &e.Problem) != nil {
			e.Problem = problem.Details{Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(b))}
		}
		// Seconds only; an HTTP date is left at 0.
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			e.Problem.RetryAfter = s
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, url, err)
	}
	return nil
}
