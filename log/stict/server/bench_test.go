package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/ctonly"
	"github.com/transparency-dev/tessera/storage/posix"

	"github.com/vesperlog/vesperlog/log/stict"
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
	h := newHarness(b)
	bodies := make([][]byte, 0, b.N*benchBatch)
	for i := range b.N * benchBatch {
		c, err := h.pki.NewTN(fmt.Sprintf("bench %d", i))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(ct.AddChainRequest{Chain: h.pki.Chain(c)})
		bodies = append(bodies, body)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var wg sync.WaitGroup
		for i := range benchBatch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(h.url+"/v1/add-chain", "application/json", bytes.NewReader(bodies[n*benchBatch+i]))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("add-chain: %s", resp.Status)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkCTBare is the floor to compare BenchmarkAddChain with: Tessera's
// static-ct-api appender on its POSIX driver alone, appending and awaiting
// the same number of certificate entries at once, with no validation,
// dedup, SCTs or HTTP.
func BenchmarkCTBare(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := newHarness(b)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stict.NewSigner("example.test/bare", k)
	if err != nil {
		b.Fatal(err)
	}
	d, err := posix.New(ctx, posix.Config{Path: filepath.Join(b.TempDir(), "log")})
	if err != nil {
		b.Fatal(err)
	}
	app, shutdown, r, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).WithBatching(tessera.DefaultBatchMaxSize, 100*time.Millisecond).WithCTLayout())
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(ctx)
	add := tessera.NewCertificateTransparencyAppender(app)
	aw := tessera.NewPublicationAwaiter(ctx, r.ReadCheckpoint, 50*time.Millisecond)
	entries := make([]*ctonly.Entry, 0, b.N*benchBatch)
	for i := range b.N * benchBatch {
		c, err := h.pki.NewTN(fmt.Sprintf("bench %d", i))
		if err != nil {
			b.Fatal(err)
		}
		chain := h.pki.Chain(c)
		entries = append(entries, &ctonly.Entry{Timestamp: uint64(time.Now().UnixMilli()), Certificate: chain[0],
			FingerprintsChain: [][32]byte{{1}, {2}}})
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var wg sync.WaitGroup
		for i := range benchBatch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, err := aw.Await(ctx, add(ctx, entries[n*benchBatch+i])); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}
