package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"

	"github.com/vesperlog/vesperlog/log/problem"
)

// net/http answers some requests before any handler runs (no Host, a
// header over MaxHeaderBytes, a malformed request line, an unknown
// transfer coding, an HTTP version it does not speak) and has no hook for
// it: conn.serve writes "HTTP/1.1 <status> <text>" + errorHeaders + body
// with one Fprintf straight on the connection (server.go, errorHeaders
// and publicErr). problemConns rewrite exactly that form into the same
// status with a problem+json body, as every other error of this server.
//
// A handler's response cannot take that form: net/http's chunkWriter adds
// a Date header to every handler response (unless a handler suppresses it,
// which none here does) and writes it through a buffer, so its first Write
// never has these headers alone. The alternatives were worse: a reverse
// proxy in front (not ours to ship), or reading requests ourselves.
var plainError = regexp.MustCompile(`\AHTTP/1\.1 ([45][0-9][0-9]) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n([^\r\n]*)\z`)

// problemListener hands out problemConns.
type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

// problemConn is a connection whose net/http plain-text error answers are
// rewritten as problem+json.
type problemConn struct{ net.Conn }

func (c problemConn) Write(p []byte) (int, error) {
	m := plainError.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	status, _ := strconv.Atoi(string(m[1]))
	if _, err := c.Conn.Write(problemResponse(status, string(m[2]), c.RemoteAddr())); err != nil {
		return 0, err
	}
	// net/http checks only the error: what it wrote is what it meant.
	return len(p), nil
}

// CloseWrite passes on the half-close net/http does after a 431 (so the
// client reads the answer before the connection is reset).
func (c problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the TCP connection's sendfile for bodies net/http copies
// from files (tiles): only bodies pass here, after the head was written.
func (c problemConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// problemResponse is a whole HTTP/1.1 response, closing the connection, of
// a problem with status and net/http's text ("400 Bad Request: missing
// required Host header") as its detail. Its title is the problem table's
// for a 400 (the usual case), else the status text.
func problemResponse(status int, text string, remote net.Addr) []byte {
	detail := text
	// net/http's text repeats the status ("431 Request Header Fields Too
	// Large", "400 Bad Request: malformed Host header"): keep what it adds.
	prefix := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if rest, ok := bytes.CutPrefix([]byte(text), []byte(prefix+": ")); ok {
		detail = string(rest)
	} else if text == prefix {
		detail = ""
	}
	var d problem.Details
	if status == http.StatusBadRequest {
		d = problem.For(fmt.Errorf("%w: %s", problem.ErrBadRequest, detail))
		if detail == "" {
			d.Detail = "the request is not valid HTTP"
		}
	} else {
		d = problem.Details{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
	}
	if status == http.StatusRequestHeaderFieldsTooLarge {
		d.Detail = fmt.Sprintf("the request's header is larger than %d bytes", maxHeaderBytes)
	}
	slog.Info("request refused before routing", "remote", remote.String(), "status", d.Status, "title", d.Title, "detail", d.Detail)
	body, err := json.Marshal(d)
	if err != nil {
		panic(errors.New("problem details do not marshal")) // a struct of strings and an int always does
	}
	body = append(body, '\n')
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(body))
	b.Write(body)
	return b.Bytes()
}
