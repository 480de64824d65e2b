package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// certReloadEvery is how often, at most, the certificate and key files are
// read again for a change.
const certReloadEvery = time.Second

// certReloader serves the certificate pair in two files, read again at
// most once a second and used once it loads: a renewal (certbot, ACME,
// an operator's cp) needs no restart. A pair that fails to load keeps the
// last good one in service, and is logged at ERROR once.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	sum     [sha256.Size]byte // of the files cert came from
	checked time.Time
	failed  string // the last reload's error, logged; "" once one succeeds
}

// newCertReloader loads the pair, which must load: a server that cannot
// serve TLS does not start.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	cert, sum, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.sum, r.checked = cert, sum, time.Now()
	return r, nil
}

// load reads and parses the pair. The files' contents are hashed, not
// their mtimes compared: a copy that keeps the old mtime is still seen.
func (r *certReloader) load() (*tls.Certificate, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if err := checkKeyFileMode(r.keyFile); err != nil {
		return nil, sum, err
	}
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, sum, fmt.Errorf("-tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, sum, fmt.Errorf("-tls-key: %w", err)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	copy(sum[:], h.Sum(nil))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, sum, fmt.Errorf("-tls-cert %s and -tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	return &cert, sum, nil
}

// checkKeyFileMode refuses a private key others can read, as ssh does: a
// key that leaked to another account lets it impersonate the log.
func checkKeyFileMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("-tls-key: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("-tls-key %s is readable or writable by group or others (mode %04o); chmod 600 it", path, m)
	}
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < certReloadEvery {
		return r.cert, nil
	}
	r.checked = time.Now()
	cert, sum, err := r.load()
	switch {
	case err != nil:
		// Logged once per failure, not once a second.
		if msg := err.Error(); msg != r.failed {
			r.failed = msg
			slog.Error("TLS certificate not reloaded: serving the last good one", "err", err)
		}
	default:
		r.failed = ""
		if sum != r.sum {
			r.cert, r.sum = cert, sum
			slog.Info("TLS certificate reloaded", "cert", r.certFile, "not_after", cert.Leaf.NotAfter)
		}
	}
	return r.cert, nil
}

// serverTLSConfig is the TLS of the server: TLS 1.2 or later (1.3 for
// every client that has it; 1.2 for the older SIP and STIR stacks, with
// Go's default cipher suites, all forward-secret AEADs), HTTP/2 offered
// before HTTP/1.1.
func serverTLSConfig(r *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// tlsListener does each connection's TLS handshake itself, before net/http
// sees the connection, so that an HTTP/1.1 connection can be handed over
// as a problemConn over the *tls.Conn (net/http would otherwise write its
// plain-text errors inside the TLS stream, where no wrapper below TLS can
// see them). net/http detects TLS by the type *tls.Conn: an HTTP/2
// connection is handed over as the *tls.Conn itself, so net/http serves
// it with HTTP/2, and the problemConn gives r.TLS through its
// ConnectionState method. The handshakes run one goroutine each, as in
// net/http, bounded by timeout.
type tlsListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration

	conns  chan net.Conn // handshaken connections, for Accept
	errs   chan error    // the inner listener's Accept errors, for Accept
	ctx    context.Context
	cancel context.CancelFunc // on Close: stops the accept loop and the handshakes
	wg     sync.WaitGroup     // the accept loop and the handshakes
}

func newTLSListener(inner net.Listener, cfg *tls.Config, timeout time.Duration) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &tlsListener{inner: inner, cfg: cfg, timeout: timeout,
		conns: make(chan net.Conn), errs: make(chan error), ctx: ctx, cancel: cancel}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			// net/http's Serve backs off on temporary errors before
			// it calls Accept again, which paces this loop.
			select {
			case l.errs <- err:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// A client speaking plain HTTP to this port gets a problem
		// saying so, not a hang or TLS garbage.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			_ = re.Conn.SetWriteDeadline(time.Now().Add(l.timeout))
			_, _ = re.Conn.Write(problemResponse(http.StatusBadRequest,
				"400 Bad Request: this port speaks HTTPS; the request was plain HTTP", raw.RemoteAddr()))
		} else {
			slog.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		}
		raw.Close()
		return
	}
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = tlsProblemConn{problemConn{tc}, tc}
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// looksLikeHTTP is whether a TLS record header is the start of an HTTP
// request (net/http's tlsRecordHeaderLooksLikeHTTP, with more methods).
func looksLikeHTTP(h []byte) bool {
	switch string(h) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake succeeded.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting and ends the handshakes under way, and waits for
// them.
func (l *tlsListener) Close() error {
	l.cancel()
	err := l.inner.Close()
	l.wg.Wait()
	return err
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

// tlsProblemConn is an HTTP/1.1 connection over TLS: net/http sees its
// TLS state through ConnectionState (and sets r.TLS), and its plain-text
// errors become problems.
type tlsProblemConn struct {
	problemConn
	tc *tls.Conn
}

func (c tlsProblemConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }
