// Package problem is vesperlog's one table of error classes: each maps to
// an HTTP status and an RFC 9457 problem title. Servers wrap a class with
// detail and Write it; clients decode the same Details. It imports no server
// code.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Error classes of vesperlog's HTTP APIs. Wrap one of them with detail; the
// table below gives the HTTP status and the problem title for each.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("signature does not verify")
	ErrForbidden    = errors.New("not authorized")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrTooLarge     = errors.New("request too large")
	ErrMediaType    = errors.New("unsupported media type")
	// ErrKeyReused is an Idempotency-Key sent again with another request
	// (another endpoint or body): the client must use a new key.
	ErrKeyReused = errors.New("idempotency key reused")
	// ErrInProgress is a request whose Idempotency-Key names one still
	// being answered: wrap it in a Retry and retry after its Retry-After.
	ErrInProgress = errors.New("request in progress")
	// ErrUnverifiable is well-formed evidence that does not verify.
	ErrUnverifiable = errors.New("does not verify")
	// ErrUpstream is a service this one depends on failing to answer.
	ErrUpstream = errors.New("upstream service failed")
	// ErrOverloaded means the log pushed back: answer 503 with Retry-After.
	ErrOverloaded = errors.New("log is overloaded")
	// ErrUnavailable means this server cannot answer now, though another
	// (or this one, fixed) can: answer 503 with Retry-After.
	ErrUnavailable = errors.New("unavailable here")
	// ErrRateLimited means the client sent more than its rate limit allows:
	// answer 429 with Retry-After (wrap it in a Retry to say how long).
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrUnwitnessed means the log has no checkpoint its witnesses cosigned
	// that covers what was asked for, yet: answer 503 with Retry-After.
	ErrUnwitnessed = errors.New("not yet cosigned by the witnesses")
	// ErrClientGone means the client cancelled the request or closed its
	// connection before the answer: not the server's failure, and no one
	// reads the answer. ClientGone makes it from the request's context.
	ErrClientGone = errors.New("client went away")
)

// StatusClientGone is the status logged (and written, to no one) for a
// request whose client went away: nginx's 499, which no RFC assigns.
const StatusClientGone = 499

// ClientGone returns err as ErrClientGone if ctx (the request's) has ended
// and err is that end (context.Canceled or DeadlineExceeded); otherwise
// err. The cause of ctx's end stays in the message.
func ClientGone(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ErrClientGone) ||
		!(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return fmt.Errorf("%w before the answer (%v): %w", ErrClientGone, context.Cause(ctx), err)
}

// Retry is an error the client should retry after After, which its
// problem sends as its Retry-After (a 503 or 429 without one sends the
// default RetryAfter).
type Retry struct {
	Err   error
	After time.Duration
}

func (r *Retry) Error() string { return r.Err.Error() }
func (r *Retry) Unwrap() error { return r.Err }

// Checked is an error that names the check of a verification that failed
// (a PASSporT's "signature", "chain", "scts", ...): its problem carries
// the name as its "check" member, so that a client can branch on it
// without parsing the detail.
type Checked struct {
	Err   error
	Check string
}

func (c *Checked) Error() string { return c.Err.Error() }
func (c *Checked) Unwrap() error { return c.Err }

// WithCheck returns err naming the failed check (nil for a nil err, and
// err itself for an empty check).
func WithCheck(err error, check string) error {
	if err == nil || check == "" {
		return err
	}
	return &Checked{Err: err, Check: check}
}

// problems maps each class to its status and RFC 9457 title.
// The class is a short fixed name, for metric labels.
var problems = []struct {
	err    error
	status int
	class  string
	title  string
}{
	{ErrBadRequest, http.StatusBadRequest, "bad_request", "The request is malformed"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized", "The request's credentials do not verify"},
	{ErrForbidden, http.StatusForbidden, "forbidden", "The signer is not authorized"},
	{ErrNotFound, http.StatusNotFound, "not_found", "Not found"},
	{ErrConflict, http.StatusConflict, "conflict", "The request conflicts with what is logged"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large", "The request is too large"},
	{ErrMediaType, http.StatusUnsupportedMediaType, "media_type", "The content type is not accepted"},
	{ErrKeyReused, http.StatusUnprocessableEntity, "key_reused", "This Idempotency-Key was used with another request"},
	{ErrInProgress, http.StatusConflict, "in_progress", "A request with this Idempotency-Key is still being answered; retry later"},
	{ErrUnverifiable, http.StatusUnprocessableEntity, "unverifiable", "The evidence does not verify"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited", "Too many submissions for this agent's rate limit; retry later"},
	{ErrUpstream, http.StatusBadGateway, "upstream", "A service this one depends on failed; retry later"},
	{ErrOverloaded, http.StatusServiceUnavailable, "overloaded", "The log is overloaded; retry later"},
	{ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "This server cannot answer now; retry later, or at another front end"},
	{ErrUnwitnessed, http.StatusServiceUnavailable, "unwitnessed", "The log's witnesses have not cosigned a checkpoint covering this yet; retry later"},
	{ErrClientGone, StatusClientGone, "client_gone", "The client went away before the answer"},
}

// ClassInternal is Class's name for an error of no class.
const ClassInternal = "internal"

// Class is the short name of err's class (bad_request, overloaded, ...),
// or ClassInternal: a bounded set, fit for a metric label.
func Class(err error) string {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			return p.class
		}
	}
	if noSpace(err) {
		return classStorageFull
	}
	return ClassInternal
}

// classStorageFull is the class of an error that a full filesystem caused.
const classStorageFull = "storage_full"

// storageFullRetry is how long a client should wait when storage is full:
// an operator has to free space.
const storageFullRetry = 30

// noSpace says whether err comes from a full filesystem (ENOSPC). Tessera
// formats some of its storage errors with %v, which drops the wrapped
// errno, so the errno's text counts too.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// RetryAfter is the Retry-After value, in seconds, sent with a 503 or a
// 429 that has no Retry of its own.
const RetryAfter = "1"

// Details is an RFC 9457 problem details object.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// RetryAfter, in whole seconds, is the Retry-After (of a 503, or of
	// any problem wrapped in a Retry) if not 0.
	RetryAfter int `json:"-"`
	// Check names the failed check of a verification (WithCheck).
	Check string `json:"check,omitempty"`
}

// For returns the problem err belongs to. Errors of no class are internal:
// their detail is logged, not sent.
func For(err error) Details {
	for _, p := range problems {
		if errors.Is(err, p.err) {
			d := Details{Type: "about:blank", Title: p.title, Status: p.status, Detail: err.Error()}
			if r := (*Retry)(nil); errors.As(err, &r) {
				d.RetryAfter = int(max(1, (r.After+time.Second-1)/time.Second))
			}
			if c := (*Checked)(nil); errors.As(err, &c) {
				d.Check = c.Check
			}
			return d
		}
	}
	if noSpace(err) {
		// A 503 that says so, not a 500: nothing was stored, reads go on,
		// and writes resume once space is freed. The error's text (file
		// paths) stays in the log.
		return Details{Type: "about:blank", Title: "The log's storage is full; retry later", Status: http.StatusServiceUnavailable,
			Detail: "the log's storage is full (no space left on device); reads go on, and submissions are taken again once space is freed", RetryAfter: storageFullRetry}
	}
	return Details{Type: "about:blank", Title: "Internal server error", Status: http.StatusInternalServerError}
}

// Write answers a request with the problem err belongs to, and logs the
// failure (Log). An error that is the end of the request's context is
// ErrClientGone (ClientGone): logged at info, not as a server error.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	err = ClientGone(r.Context(), err)
	p := For(err)
	if p.Status == http.StatusInternalServerError || noSpace(err) {
		// The detail is not sent; the log line is where it is kept.
		Log(r, p, "err", err)
	} else {
		Log(r, p)
	}
	WriteDetails(w, p)
}

// Log writes the one log line of a failed request, or of a failed entry
// of a batch (attrs then name it, "entry", i): method, path, status,
// problem title and detail, and the agent if NoteAgent named one. Server
// errors log at error level, overload and upstream failures at warning,
// the client's mistakes at info.
func Log(r *http.Request, p Details, attrs ...any) {
	level := slog.LevelInfo
	switch {
	case p.Status == http.StatusInternalServerError:
		level = slog.LevelError
	case p.Status >= 500:
		level = slog.LevelWarn
	}
	ctx := r.Context()
	a := []any{"method", r.Method, "path", r.URL.Path, "status", p.Status, "title", p.Title}
	if p.Detail != "" {
		a = append(a, "detail", p.Detail)
	}
	if agent := agentOf(ctx); agent != "" && !hasKey(attrs, "agent") {
		a = append(a, "agent", agent)
	}
	slog.Log(ctx, level, "request failed", append(a, attrs...)...)
}

func hasKey(attrs []any, key string) bool {
	for i := 0; i < len(attrs); i += 2 {
		if attrs[i] == key {
			return true
		}
	}
	return false
}

// requestAgent holds the agent a request came from, once known; the server
// installs it (WithAgentSlot) and the submission code fills it (NoteAgent).
type requestAgent struct {
	mu   sync.Mutex // guards name: batch statements are checked in parallel
	name string
}

type agentKey struct{}

// WithAgentSlot returns a context in which NoteAgent records the agent a
// request came from, for its failure log line.
func WithAgentSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, agentKey{}, &requestAgent{})
}

// NoteAgent records that the request of ctx came from the registered agent
// name (several agents in one batch are "several"). Without WithAgentSlot
// it does nothing.
func NoteAgent(ctx context.Context, name string) {
	ra, ok := ctx.Value(agentKey{}).(*requestAgent)
	if !ok || name == "" {
		return
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	switch ra.name {
	case "":
		ra.name = name
	case name:
	default:
		ra.name = "several"
	}
}

func agentOf(ctx context.Context) string {
	ra, ok := ctx.Value(agentKey{}).(*requestAgent)
	if !ok {
		return ""
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return ra.name
}

// WriteDetails writes p as application/problem+json.
func WriteDetails(w http.ResponseWriter, p Details) {
	if p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests || p.RetryAfter > 0 {
		if p.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
		} else {
			w.Header().Set("Retry-After", RetryAfter)
		}
	}
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// RFC 9110 asks for a challenge; the "JWS" scheme names what the
		// log wants. Handlers that want another set it first.
		w.Header().Set("WWW-Authenticate", `JWS realm="vesperlog"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON answers a request with v as JSON: the success twin of Write.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// ReadBody checks the content type and reads at most limit bytes: the
// request twin of Write.
func ReadBody(w http.ResponseWriter, r *http.Request, contentType string, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentType {
		return nil, fmt.Errorf("%w: Content-Type must be %s", ErrMediaType, contentType)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: body is over %d bytes", ErrTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	return body, nil
}
