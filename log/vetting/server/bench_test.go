package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/vetting"
)

const benchBatch = 1000

// BenchmarkSubmit measures the vetting log end to end: batches of 1,000
// signed statements over HTTP, each checked (one ES256 verification),
// deduplicated, appended to Tessera's POSIX driver, awaited until a
// published checkpoint covers it, and answered with a signed receipt.
func BenchmarkSubmit(b *testing.B) {
	h := newHarness(b)
	bodies := make([][]byte, b.N)
	for n := range bodies {
		sts := make([]string, benchBatch)
		for i := range sts {
			pub := jose.JSONWebKey{Key: h.es.Public()}
			var d [32]byte
			rand.Read(d[:])
			st, _ := vetting.NewStatement(&pub, d, "", uint64(h.now.Unix()))
			sts[i], _ = st.Sign(h.es)
		}
		bodies[n], _ = json.Marshal(vetting.BatchRequest{Statements: sts})
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		code, _, out := h.post("/v1/add-batch", "application/json", string(bodies[n]))
		if code != 200 {
			b.Fatalf("%d %.200s", code, out)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkTesseraBare is the floor to compare BenchmarkSubmit with:
// Tessera's POSIX driver alone, appending and awaiting 1,000 entries of the
// same size per iteration, with no checks, dedup, proofs or HTTP.
func BenchmarkTesseraBare(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	skey, _, _ := note.GenerateKey(rand.Reader, "example.test/bare")
	signer, _ := note.NewSigner(skey)
	d, err := posix.New(ctx, posix.Config{Path: filepath.Join(b.TempDir(), "log")})
	if err != nil {
		b.Fatal(err)
	}
	app, shutdown, r, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).WithBatching(tessera.DefaultBatchMaxSize, 100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(ctx)
	aw := tessera.NewPublicationAwaiter(ctx, r.ReadCheckpoint, 50*time.Millisecond)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		var wg sync.WaitGroup
		for i := 0; i < benchBatch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := make([]byte, 221) // a vetting leaf without subject
				copy(e, fmt.Sprintf("%d/%d", n, i))
				if _, _, err := aw.Await(ctx, app.Add(ctx, tessera.NewEntry(e))); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}
