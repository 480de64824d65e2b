package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		header string
	}{
		{ErrBadRequest, 400, ""},
		{ErrUnauthorized, 401, "WWW-Authenticate"},
		{ErrForbidden, 403, ""},
		{ErrNotFound, 404, ""},
		{ErrConflict, 409, ""},
		{ErrTooLarge, 413, ""},
		{ErrMediaType, 415, ""},
		{ErrUnverifiable, 422, ""},
		{ErrRateLimited, 429, "Retry-After"},
		{ErrKeyReused, 422, ""},
		{&Retry{Err: ErrInProgress, After: time.Second}, 409, "Retry-After"},
		{ErrUpstream, 502, ""},
		{ErrOverloaded, 503, "Retry-After"},
		{errors.New("disk on fire"), 500, ""},
	} {
		w := httptest.NewRecorder()
		Write(w, httptest.NewRequest(http.MethodGet, "/", nil), fmt.Errorf("context: %w", c.err))
		var d Details
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status || d.Status != c.status || d.Title == "" || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%v: %d %+v", c.err, w.Code, d)
		}
		if c.header != "" && w.Header().Get(c.header) == "" {
			t.Errorf("%v: no %s header", c.err, c.header)
		}
		if c.status == 500 && d.Detail != "" {
			t.Errorf("internal error detail leaked: %q", d.Detail)
		}
	}
}

// TestRetry: a 503 or a 429 carries the error's own Retry-After, rounded
// up to whole seconds, and the default without one.
func TestRetry(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&Retry{Err: fmt.Errorf("%w: not yet", ErrUnwitnessed), After: 29500 * time.Millisecond}, "30"},
		{fmt.Errorf("wrapped: %w", &Retry{Err: ErrOverloaded, After: time.Millisecond}), "1"},
		{ErrUnwitnessed, RetryAfter},
		{ErrOverloaded, RetryAfter},
		{&Retry{Err: fmt.Errorf("%w: agent over its limit", ErrRateLimited), After: 2100 * time.Millisecond}, "3"},
		{ErrRateLimited, RetryAfter},
	} {
		w := httptest.NewRecorder()
		Write(w, httptest.NewRequest("GET", "/", nil), c.err)
		if want := For(c.err).Status; w.Code != want || (want != 503 && want != 429) || w.Header().Get("Retry-After") != c.want {
			t.Errorf("%v: %d, Retry-After %q, want %d and %q", c.err, w.Code, w.Header().Get("Retry-After"), For(c.err).Status, c.want)
		}
	}
}

// TestStorageFull: an error a full filesystem caused, wrapped or only
// formatted into another (as Tessera does), is a 503 that says so, with a
// Retry-After, and without the error's file paths.
func TestStorageFull(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("adding: %w", &os.PathError{Op: "write", Path: "/data/tile/x", Err: syscall.ENOSPC}),
		fmt.Errorf("failed to set tile: %v", &os.PathError{Op: "write", Path: "/data/tile/x", Err: syscall.ENOSPC}),
	} {
		p := For(err)
		if p.Status != 503 || p.RetryAfter != storageFullRetry || !strings.Contains(p.Title, "storage is full") || strings.Contains(p.Detail, "/data") {
			t.Errorf("%v: %+v", err, p)
		}
		if c := Class(err); c != "storage_full" {
			t.Errorf("%v: class %q", err, c)
		}
		w := httptest.NewRecorder()
		Write(w, httptest.NewRequest("POST", "/vetting/v1/add", nil), err)
		if w.Code != 503 || w.Header().Get("Retry-After") != "30" || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%v: %d %v", err, w.Code, w.Header())
		}
	}
	if p := For(errors.New("disk quota fine")); p.Status != 500 {
		t.Errorf("an unrelated error: %+v", p)
	}
}

// TestClientGone: the end of the request's own context is ErrClientGone
// (499, not a 500), with its cause; other errors, and a context error
// while the request goes on (a publish timeout), are left as they are.
func TestClientGone(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("client closed the connection"))
	other := errors.New("disk on fire")
	for _, c := range []struct {
		name   string
		ctx    context.Context
		err    error
		status int
	}{
		{"request cancelled", gone, fmt.Errorf("adding: %w", context.Canceled), StatusClientGone},
		{"request cancelled, timeout error", gone, context.DeadlineExceeded, StatusClientGone},
		{"request live, publish timeout", live, context.DeadlineExceeded, 500},
		{"request cancelled, other error", gone, other, 500},
		{"no error", gone, nil, 0},
	} {
		err := ClientGone(c.ctx, c.err)
		if c.err == nil {
			if err != nil {
				t.Errorf("%s: %v; want nil", c.name, err)
			}
			continue
		}
		if p := For(err); p.Status != c.status {
			t.Errorf("%s: status %d; want %d", c.name, p.Status, c.status)
		}
		if c.status == StatusClientGone {
			if Class(err) != "client_gone" || !strings.Contains(err.Error(), "client closed the connection") {
				t.Errorf("%s: class %s, %q; want client_gone with the cause", c.name, Class(err), err)
			}
			if again := ClientGone(c.ctx, err); again != err {
				t.Errorf("%s: ClientGone wrapped twice: %q", c.name, again)
			}
		}
	}
}

// TestCheck: a failed verification's problem names its check, wrapped
// under more context, and only a Checked error has one.
func TestCheck(t *testing.T) {
	err := fmt.Errorf("verify-passport: %w", WithCheck(fmt.Errorf("%w: SCT from an untrusted log", ErrUnverifiable), "scts"))
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest(http.MethodPost, "/api/verify-passport", nil), err)
	var d map[string]any
	if err := json.NewDecoder(w.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if w.Code != 422 || d["check"] != "scts" || d["status"] != float64(422) {
		t.Errorf("got %d %v, want 422 with check scts", w.Code, d)
	}
	if c := For(ErrUnverifiable).Check; c != "" {
		t.Errorf("an error without a check has check %q", c)
	}
	if WithCheck(nil, "scts") != nil || WithCheck(ErrBadRequest, "") != ErrBadRequest {
		t.Error("WithCheck changed a nil error or one without a check")
	}
	b, _ := json.Marshal(For(ErrBadRequest))
	if strings.Contains(string(b), "check") {
		t.Errorf("a problem without a check has the member: %s", b)
	}
}
