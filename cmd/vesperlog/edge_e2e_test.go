package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawExchange sends req on a fresh connection to addr (over TLS if cfg is
// not nil) and returns the response net/http's client reads from it.
func rawExchange(t *testing.T, addr string, cfg *tls.Config, req string) (*http.Response, []byte) {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if cfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.40q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantProblem fails the test unless resp is a problem+json of status whose
// detail contains detail.
func wantProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, detail string) {
	t.Helper()
	var p struct {
		Type   string
		Title  string
		Status int
		Detail string
	}
	err := json.Unmarshal(body, &p)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" || err != nil ||
		p.Status != status || p.Type != "about:blank" || p.Title == "" || !strings.Contains(p.Detail, detail) {
		t.Errorf("%s: %d %q %s (%v); want a %d problem with %q", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, err, status, detail)
	}
}

// netHTTPRefusals are requests net/http refuses before any handler runs,
// with the status and detail of the problem that must answer them.
var netHTTPRefusals = []struct {
	name, req string
	status    int
	detail    string
}{
	{"no Host", "GET /vetting/checkpoint HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
	{"header over MaxHeaderBytes", "GET /vetting/checkpoint HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, "larger than 16384 bytes"},
	{"garbage request line", "\x01\x02 garbage\r\n\r\n", 400, "not valid HTTP"},
	{"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "malformed Host header"},
	{"unknown transfer coding", "POST /vetting/add HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, "Unsupported transfer encoding"},
	{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "unsupported protocol version"},
	{"two Content-Lengths", "POST /vetting/add HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "not valid HTTP"},
}

// TestNetHTTPErrorsAreProblems: what net/http refuses before a handler
// runs is a problem+json too, and leaves the log as it was.
func TestNetHTTPErrorsAreProblems(t *testing.T) {
	server, _ := binaries(t)
	dir := t.TempDir()
	srv := startServer(t, server, dir)
	before := httpGet200(t, srv.url+"/vetting/checkpoint")
	addr := strings.TrimPrefix(srv.url, "http://")
	for _, c := range netHTTPRefusals {
		resp, body := rawExchange(t, addr, nil, c.req)
		wantProblem(t, c.name, resp, body, c.status, c.detail)
	}
	// A handler's own answers are untouched (their Date header tells them
	// apart), plain-text bodies included.
	resp, body := rawExchange(t, addr, nil, "GET /vetting/checkpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || resp.Header.Get("Date") == "" || !bytes.HasPrefix(body, []byte("e2e.test/vetting\n")) {
		t.Errorf("a checkpoint read over raw TCP: %d %q", resp.StatusCode, body)
	}
	if after := httpGet200(t, srv.url+"/vetting/checkpoint"); firstLines(after, 2) != firstLines(before, 2) {
		t.Errorf("the log changed: %q, then %q", before, after)
	}
	srv.stop(t)
	if !strings.Contains(srv.stderr.String(), "request refused before routing") {
		t.Errorf("the refusals are not logged:\n%s", srv.stderr)
	}
}

// firstLines is a checkpoint's origin and size.
func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// selfSigned writes a new self-signed certificate for 127.0.0.1 and its
// key to certFile and keyFile (the key mode 0600), each by rename so the
// server never reads half a file, and returns the certificate.
func selfSigned(t *testing.T, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "vesperlog test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	writeByRename(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return cert
}

func writeByRename(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedCert makes a new TLS connection to addr, trusting roots, with the
// ALPN protocols protos, and returns the certificate and the protocol.
func servedCert(t *testing.T, addr string, roots *x509.CertPool, protos ...string) (*x509.Certificate, string, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, NextProtos: protos})
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0], st.NegotiatedProtocol, nil
}

// TestHTTPS: with -tls-cert and -tls-key the server speaks HTTPS (HTTP/2
// and HTTP/1.1, TLS 1.2 at least), serves a renewed certificate without
// a restart, keeps the last good one when the files go bad, answers plain
// HTTP on its port with a problem, and the vesper client reaches it with
// a private CA through SSL_CERT_FILE.
func TestHTTPS(t *testing.T) {
	server, cli := binaries(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")

	// A key others can read is refused, in one line.
	selfSigned(t, certFile, keyFile)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, "-addr", "127.0.0.1:0", "-data", "data", "-tls-cert", certFile, "-tls-key", keyFile)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "readable or writable by group or others") ||
		strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
		t.Errorf("a world-readable key: %v\n%s", err, out)
	}

	first := selfSigned(t, certFile, keyFile)
	srv := startServer(t, server, dir, "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(srv.url, "https://127.0.0.1:") {
		t.Fatalf("announced %s", srv.url)
	}
	addr := strings.TrimPrefix(srv.url, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(first)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := h2.Get(srv.url + "/vetting/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("GET over HTTPS: %d %s %v", resp.StatusCode, resp.Proto, resp.TLS)
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// HTTP/1.1 over TLS: net/http's own refusals are problems here too.
	for _, c := range netHTTPRefusals[:3] {
		resp, body := rawExchange(t, addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}, c.req)
		wantProblem(t, "over TLS: "+c.name, resp, body, c.status, c.detail)
	}
	// Plain HTTP to the TLS port is an answer, not a hang.
	resp, body := rawExchange(t, addr, nil, "GET /vetting/checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
	wantProblem(t, "plain HTTP to the HTTPS port", resp, body, 400, "this port speaks HTTPS")

	// The vesper client needs nothing but the CA, as Go's clients read it
	// on Linux: SSL_CERT_FILE.
	vesper := exec.Command(cli, "trust", "-server", srv.url, "-out", "trust.json")
	vesper.Dir = dir
	vesper.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
	if out, err := vesper.CombinedOutput(); err != nil {
		t.Errorf("vesper trust over HTTPS with SSL_CERT_FILE: %v\n%s", err, out)
	}

	// A renewed pair is served without a restart, to HTTP/2 and HTTP/1.1.
	second := selfSigned(t, certFile, keyFile)
	roots.AddCert(second)
	for _, proto := range []string{"h2", "http/1.1"} {
		eventually(t, 10*time.Second, "the renewed certificate served over "+proto, func() (bool, string) {
			got, p, err := servedCert(t, addr, roots, proto)
			if err != nil {
				return false, err.Error()
			}
			return got.Equal(second) && p == proto, got.SerialNumber.String() + " " + p
		})
	}
	h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err = h1.Get(srv.url + "/vetting/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("GET over HTTPS/1.1: %d %s", resp.StatusCode, resp.Proto)
	}

	// A pair that does not load (the key of another certificate) keeps
	// the last good one.
	other := filepath.Join(dir, "other")
	selfSigned(t, other+".crt", other+".key")
	keyPEM, err := os.ReadFile(other + ".key")
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, keyFile, keyPEM, 0o600)
	time.Sleep(2 * certReloadEvery)
	for range 3 {
		got, _, err := servedCert(t, addr, roots)
		if err != nil || !got.Equal(second) {
			t.Fatalf("after a bad pair: %v, %v", got, err)
		}
		time.Sleep(certReloadEvery / 2)
	}
	srv.stop(t)
	if n := strings.Count(srv.stderr.String(), "TLS certificate not reloaded"); n != 1 || !strings.Contains(srv.stderr.String(), "level=ERROR") {
		t.Errorf("a bad pair is logged %d times, want once at ERROR:\n%s", n, srv.stderr)
	}
}

// openFDs is the number of open file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSlowClients: clients that stall in a request's head (slowloris) or
// dribble its body cannot take the server down. It keeps answering others
// at once, drops the stalled head after ReadHeaderTimeout and the slow body
// after ReadTimeout, and its file descriptors return to what they were.
func TestSlowClients(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc: cannot count file descriptors")
	}
	const heads, bodies = 300, 50
	server, _ := binaries(t)
	dir := t.TempDir()
	srv := startServer(t, server, dir)
	addr := strings.TrimPrefix(srv.url, "http://")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	get := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(srv.url + "/vetting/checkpoint")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	client.Transport.(*http.Transport).CloseIdleConnections()
	baseline := openFDs(t, srv.cmd.Process.Pid)

	start := time.Now()
	dial := func(head string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var stalled, dribbling []net.Conn
	for range heads {
		stalled = append(stalled, dial("GET /vetting/checkpoint HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	}
	for range bodies {
		dribbling = append(dribbling, dial("POST /vetting/v1/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"))
	}
	if n := openFDs(t, srv.cmd.Process.Pid); n < baseline+heads {
		t.Logf("open fds %d, baseline %d: not all %d connections accepted yet", n, baseline, heads+bodies)
	}
	// The body dribblers send a byte a second, to stay busy.
	stop := make(chan struct{})
	dribbled := make(chan struct{})
	go func() {
		defer close(dribbled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, c := range dribbling {
					_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					_, _ = c.Write([]byte(" "))
				}
			}
		}
	}()
	defer func() { close(stop); <-dribbled }()

	// Others are served at once while the stalled clients hang on.
	var slowest time.Duration
	for time.Since(start) < 5*time.Second {
		d, err := get()
		if err != nil {
			t.Fatalf("a reader while %d clients stall: %v", heads+bodies, err)
		}
		slowest = max(slowest, d)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("slowest read among %d stalled connections: %s", heads+bodies, slowest)

	// closedBy waits for the server to close c, and fails the test if it
	// has not by deadline.
	closedBy := func(c net.Conn, deadline time.Time, what string) {
		_ = c.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: still open after %s", what, time.Since(start).Round(time.Second))
		}
	}
	for _, c := range stalled {
		closedBy(c, start.Add(readHeaderTimeout+10*time.Second), "a stalled request head")
	}
	t.Logf("stalled heads closed after %s", time.Since(start).Round(100*time.Millisecond))
	for _, c := range dribbling {
		closedBy(c, start.Add(30*time.Second+15*time.Second), "a dribbled body")
	}
	t.Logf("dribbled bodies closed after %s", time.Since(start).Round(100*time.Millisecond))
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	client.Transport.(*http.Transport).CloseIdleConnections()
	eventually(t, 10*time.Second, "open file descriptors back to the baseline", func() (bool, string) {
		n := openFDs(t, srv.cmd.Process.Pid)
		return n <= baseline, fmt.Sprintf("%d open, baseline %d", n, baseline)
	})
	srv.stop(t)
}
