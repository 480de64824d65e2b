package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/problem"
)

func TestAPIErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/problem/v1/add", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/jose" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		problem.Write(w, r, errors.Join(problem.ErrForbidden, errors.New("unknown agent key X")))
	})
	mux.HandleFunc("/plain/v1/add", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	})
	mux.HandleFunc("/huge/v1/add", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"index":1,"receipt":"`))
		w.Write([]byte(strings.Repeat("A", maxResponse)))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	_, err := NewVetting(srv.URL+"/problem", nil).Add(ctx, "x.y.z")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "unknown agent key X") {
		t.Fatalf("problem answer: %v", err)
	}
	_, err = NewVetting(srv.URL+"/plain", nil).Add(ctx, "x.y.z")
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(err.Error(), "upstream down") {
		t.Fatalf("plain error: %v", err)
	}
	if _, err = NewVetting(srv.URL+"/huge", nil).Add(ctx, "x.y.z"); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversized answer: %v", err)
	}
}
