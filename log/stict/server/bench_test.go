package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/ctonly"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/storagetest"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// benchBatch is how many chains are submitted at once, each in its own
// request, as many CAs would.
const benchBatch = 1000

// BenchmarkAddChain measures the STI-CT log end to end: benchBatch
// concurrent add-chain requests over HTTP, each chain verified to the
// root with its TNAuthList parsed, deduplicated, appended to Tessera's
// POSIX driver in the static-ct-api layout, awaited until a published
// checkpoint covers it, and answered with a signed SCT.
func BenchmarkAddChain(b *testing.B) {
	storagetest.QuietKlog()
	benchAddChain(b, newHarness(b), 1)
}

// benchAddChain posts b.N × benchBatch chains to h, benchBatch at once per
// iteration and inflight iterations at a time. Pushed back (503), a chain
// is submitted again after Retry-After, as a CA would.
func benchAddChain(b *testing.B, h *harness, inflight int) {
	bodies := make([][]byte, 0, b.N*benchBatch)
	for i := range b.N * benchBatch {
		c, err := h.pki.NewTN(fmt.Sprintf("bench %d", i))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(ct.AddChainRequest{Chain: h.pki.Chain(c)})
		bodies = append(bodies, body)
	}
	r := storagetest.StartRun(b)
	storagetest.RunInflight(b, inflight, func(n int) {
		var wg sync.WaitGroup
		for i := range benchBatch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					code, out, err := post(h.url+"/v1/add-chain", "application/json", bodies[n*benchBatch+i])
					switch {
					case err != nil:
						r.Fail("add-chain: %v", err)
					case code == http.StatusServiceUnavailable:
						r.PushedBack(1)
						continue
					case code != http.StatusOK:
						r.Fail("add-chain: %d %.200s", code, out)
					}
					return
				}
			}()
		}
		wg.Wait()
	})
	r.Done(b.N * benchBatch)
}

// post posts body and returns the status and the response body.
func post(url, contentType string, body []byte) (int, []byte, error) {
	resp, err := storagetest.Client.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// BenchmarkCTBare is the floor to compare BenchmarkAddChain with: Tessera's
// static-ct-api appender on its POSIX driver alone, appending and awaiting
// the same number of certificate entries at once, with no validation,
// dedup, SCTs or HTTP.
func BenchmarkCTBare(b *testing.B) {
	storagetest.QuietKlog()
	d, err := posix.New(context.Background(), posix.Config{Path: filepath.Join(b.TempDir(), "log")})
	if err != nil {
		b.Fatal(err)
	}
	benchCTBare(b, d, nil, 100*time.Millisecond, 1)
}

// benchCTBare appends and awaits b.N × benchBatch certificate entries on
// Tessera's static-ct-api appender over d (with antispam as, if set),
// benchBatch at once per iteration and inflight iterations at a time. An
// entry pushed back is added again after the delay a vesperlog client is
// asked to wait.
func benchCTBare(b *testing.B, d tessera.Driver, as tessera.Antispam, interval time.Duration, inflight int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pki, err := stitest.Generate(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stict.NewSigner("example.test/bare", k)
	if err != nil {
		b.Fatal(err)
	}
	// The layout first: WithAntispam takes its bundle hasher.
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(interval).WithBatching(tessera.DefaultBatchMaxSize, 100*time.Millisecond).WithCTLayout()
	if as != nil {
		opts = opts.WithAntispam(tessera.DefaultAntispamInMemorySize, as)
	}
	app, shutdown, lr, err := tessera.NewAppender(ctx, d, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(ctx)
	add := tessera.NewCertificateTransparencyAppender(app)
	aw := tessera.NewPublicationAwaiter(ctx, lr.ReadCheckpoint, 50*time.Millisecond)
	entries := make([]*ctonly.Entry, 0, b.N*benchBatch)
	for i := range b.N * benchBatch {
		c, err := pki.NewTN(fmt.Sprintf("bench %d", i))
		if err != nil {
			b.Fatal(err)
		}
		chain := pki.Chain(c)
		entries = append(entries, &ctonly.Entry{Timestamp: uint64(time.Now().UnixMilli()), Certificate: chain[0],
			FingerprintsChain: [][32]byte{{1}, {2}}})
	}
	r := storagetest.StartRun(b)
	storagetest.RunInflight(b, inflight, func(n int) {
		var wg sync.WaitGroup
		for i := range benchBatch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, _, err := aw.Await(ctx, add(ctx, entries[n*benchBatch+i]))
					if errors.Is(err, tessera.ErrPushback) {
						r.PushedBack(1)
						continue
					}
					if err != nil {
						r.Fail("add: %v", err)
					}
					return
				}
			}()
		}
		wg.Wait()
	})
	r.Done(b.N * benchBatch)
}

// BenchmarkAddChainAWS is BenchmarkAddChain on the aws backend
// (storage.Open: Tessera's AWS driver, its MySQL antispam store, the
// cross-process dedup claims and the leaf-hash index on MariaDB, tiles and
// issuer/ objects on an S3-compatible server), with awsInflight iterations
// (1,000 requests each) in flight.
func BenchmarkAddChainAWS(b *testing.B) { benchAddChain(b, newAWSHarness(b), awsInflight) }

// BenchmarkCTBareAWS is BenchmarkCTBare on Tessera's AWS driver with its
// MySQL antispam store, on the same servers, configured as storage.Open
// configures them, with awsInflight iterations in flight.
func BenchmarkCTBareAWS(b *testing.B) {
	a := storagetest.NewAWS(b)
	d, as := storagetest.BareAWS(b, a, Name)
	benchCTBare(b, d, as, awsCheckpointInterval, awsInflight)
}

// The aws benchmarks. Each add waits for a checkpoint, published at most
// once a second on aws (Tessera's minimum there), so one iteration at a
// time would measure that wait; awsInflight iterations of benchBatch
// entries are kept in flight instead, below Tessera's pushback (4,096
// outstanding). The posix benchmarks keep one iteration in flight, as they
// always have.
const (
	awsCheckpointInterval = time.Second
	awsInflight           = 3
)

// newAWSHarness is newHarness on the aws backend: a fresh database and
// bucket (storagetest.NewAWS, which skips the benchmark when the servers
// are absent), opened as the server opens them.
func newAWSHarness(b *testing.B) *harness {
	b.Helper()
	a := storagetest.NewAWS(b)
	ctx := context.Background()
	pki, err := stitest.Generate(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	roots, err := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.DER}))
	if err != nil {
		b.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stict.NewSigner("example.test/stict", k)
	if err != nil {
		b.Fatal(err)
	}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := receipts.NewSigner(rk)
	if err != nil {
		b.Fatal(err)
	}
	storagetest.QuietKlog()
	be, err := storage.Open(ctx, storage.Config{Backend: storage.AWS, DSN: storagetest.CapDSN(b, a.DSN), Bucket: a.Bucket, S3Endpoint: a.Endpoint})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	s, err := Open(ctx, OpenConfig{Storage: be, Signer: signer, Roots: roots, Receipts: rs, CheckpointInterval: awsCheckpointInterval})
	if err != nil {
		b.Fatal(err)
	}
	l := s.Log()
	b.Cleanup(func() { _ = l.Close(context.Background()) })
	mux := http.NewServeMux()
	l.HandleReads(mux, "/stict")
	s.Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	pol, err := policy.ForLog(signer.VKey())
	if err != nil {
		b.Fatal(err)
	}
	return &harness{t: b, url: srv.URL + "/stict", signer: signer, pki: pki,
		trust: receipts.Trust{Keys: receipts.NewKeySet(rs.PublicJWK()), Policy: pol}}
}
