package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// gzipAlways serves upstream's answers gzipped, whatever the request's
// Accept-Encoding, as static-ct-api v1.1.0 allows a log to.
func gzipAlways(t *testing.T, upstream string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A client of its own, which decodes whatever upstream sends.
		resp, err := http.Get(upstream + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(resp.StatusCode)
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(body)
		_ = zw.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestProveSCT: a delegate certificate issued through a real STI-CT log
// whose checkpoints a witness cosigns is proven in the log from its SCT's
// leaf_index, also when the log gzips everything unasked; another leaf,
// an index past the tree and a policy the checkpoint does not meet are
// refused, each saying why.
func TestProveSCT(t *testing.T) {
	ctx := context.Background()
	wskey, wvkey, err := witness.GenerateKey("witness.test/w", witness.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	k, err := witness.ParseKey(wskey)
	if err != nil {
		t.Fatal(err)
	}
	var pol *policy.Policy
	sl := startSTICT(t, func(oc *stictserver.OpenConfig) {
		logs, err := policy.ForLog(oc.Signer.VKey())
		if err != nil {
			t.Fatal(err)
		}
		w, err := witness.New(k.Signer, logs, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ws := httptest.NewServer(w.Handler())
		t.Cleanup(ws.Close)
		if pol, err = policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w %s %s\nquorum w\n", oc.Signer.VKey(), wvkey, ws.URL))); err != nil {
			t.Fatal(err)
		}
		g, err := tessera.NewWitnessGroupFromPolicy([]byte(pol.String()))
		if err != nil {
			t.Fatal(err)
		}
		oc.Witnesses = &g
	})
	final, err := sl.pki.IssueDelegate(stitest.DelegateOptions{Name: "delegate"}, stitest.AddPreChain(nil, sl.url))
	if err != nil {
		t.Fatal(err)
	}
	log, err := stict.CTLogFromVKey(sl.signer.Name(), sl.signer.VKey(), sl.url)
	if err != nil {
		t.Fatal(err)
	}
	scts, _, err := stict.VerifyEmbeddedSCTs(final.Cert, sl.pki.Intermediate.Cert, []stict.CTLog{log}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := scts[0]
	if !s.HasLeafIndex || s.LeafIndex != 3 {
		t.Fatalf("leaf_index %d, want 3 (after startSTICT's three entries)", s.LeafIndex)
	}
	p := NewSCTProver(receipts.Trust{Policy: pol}, nil)
	line, err := p.ProveSCT(ctx, log, s.LeafIndex, s.Leaf)
	if err != nil || !strings.Contains(line, "entry 3 of example.test/stict in checkpoint size 4, cosigned by w") {
		t.Fatalf("ProveSCT = %q, %v", line, err)
	}

	// The same through a log that gzips every answer, read by a client
	// whose transport does not decode gzip itself.
	gz := log
	gz.URL = gzipAlways(t, sl.url).URL
	noAuto := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	if line, err := NewSCTProver(receipts.Trust{Policy: pol}, noAuto).ProveSCT(ctx, gz, s.LeafIndex, s.Leaf); err != nil || !strings.HasPrefix(line, "inclusion: entry 3") {
		t.Fatalf("gzipped log: %q, %v", line, err)
	}

	other := bytes.Clone(s.Leaf)
	other[len(other)-20] ^= 1
	if _, err := p.ProveSCT(ctx, log, s.LeafIndex, other); err == nil || !strings.Contains(err.Error(), "another certificate") {
		t.Errorf("another leaf: %v", err)
	}
	if _, err := p.ProveSCT(ctx, log, 9, s.Leaf); err == nil || !strings.Contains(err.Error(), "not in the tree of example.test/stict of size 4") || !strings.Contains(err.Error(), "has not passed yet") {
		t.Errorf("index past the tree: %v", err)
	}
	p.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := p.ProveSCT(ctx, log, 9, s.Leaf); err == nil || !strings.Contains(err.Error(), "did not keep its promise") {
		t.Errorf("index past the tree after the MMD: %v", err)
	}
	_, otherW, _ := witness.GenerateKey("witness.test/x", witness.Ed25519)
	strict, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness x %s\nquorum x\n", sl.signer.VKey(), otherW)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSCTProver(receipts.Trust{Policy: strict}, nil).ProveSCT(ctx, log, s.LeafIndex, s.Leaf); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("checkpoint without the pinned witness's cosignature: %v", err)
	}
}

// TestHTTPFetcherGzip: the fetcher decodes gzip a server sends unasked
// (static-ct-api v1.1.0), asks for it explicitly, bounds what it reads
// after decompression, and refuses encodings it cannot read.
func TestHTTPFetcherGzip(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{0}, maxCheckpoint+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ae := r.Header.Get("Accept-Encoding"); ae != "gzip, identity" {
			http.Error(w, "Accept-Encoding "+ae, http.StatusBadRequest)
			return
		}
		body := []byte("checkpoint body\n")
		switch r.URL.Path {
		case "/big/checkpoint":
			body = big
		case "/br/checkpoint":
			w.Header().Set("Content-Encoding", "br")
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(body)
		_ = zw.Close()
	}))
	t.Cleanup(srv.Close)
	for _, hc := range []*http.Client{http.DefaultClient, {Transport: &http.Transport{DisableCompression: true}}} {
		f, err := NewHTTPFetcher(srv.URL+"/log", HTTPOptions{Client: hc, Retries: 1, Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := f.ReadCheckpoint(ctx); err != nil || string(b) != "checkpoint body\n" {
			t.Errorf("gzipped checkpoint: %q, %v", b, err)
		}
	}
	f, _ := NewHTTPFetcher(srv.URL+"/big", HTTPOptions{Retries: 1, Backoff: time.Millisecond})
	if _, err := f.ReadCheckpoint(ctx); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", maxCheckpoint)) {
		t.Errorf("checkpoint over the limit once decompressed: %v", err)
	}
	f, _ = NewHTTPFetcher(srv.URL+"/br", HTTPOptions{Retries: 1, Backoff: time.Millisecond})
	if _, err := f.ReadCheckpoint(ctx); err == nil || !strings.Contains(err.Error(), `unsupported Content-Encoding "br"`) {
		t.Errorf("br: %v", err)
	}
}
