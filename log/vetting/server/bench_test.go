package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/idempotency"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/storagetest"
	"github.com/vesperlog/vesperlog/witness/policy"
)

const benchBatch = 1000

// The aws benchmarks. Each add waits for a checkpoint, published at most
// once a second on aws (Tessera's minimum there), so one batch at a time
// would measure that wait; awsInflight iterations of benchBatch entries are
// kept in flight instead, below Tessera's pushback (4,096 outstanding).
// The posix benchmarks keep one iteration in flight, as they always have.
const (
	awsCheckpointInterval = time.Second
	awsInflight           = 3
)

// BenchmarkSubmit measures the vetting log end to end: batches of 1,000
// signed statements over HTTP, each checked (one ES256 verification),
// deduplicated, appended to Tessera's POSIX driver, awaited until a
// published checkpoint covers it, and answered with a signed receipt.
func BenchmarkSubmit(b *testing.B) {
	storagetest.QuietKlog()
	benchSubmit(b, newHarness(b), 1)
}

// BenchmarkTesseraBare is the floor to compare BenchmarkSubmit and
// BenchmarkAdd with: Tessera's POSIX driver alone, appending and awaiting
// 1,000 entries of the same size per iteration, with no checks, dedup,
// proofs or HTTP.
func BenchmarkTesseraBare(b *testing.B) {
	storagetest.QuietKlog()
	d, err := posix.New(context.Background(), posix.Config{Path: filepath.Join(b.TempDir(), "log")})
	if err != nil {
		b.Fatal(err)
	}
	benchBare(b, d, nil, 100*time.Millisecond, 1)
}

// BenchmarkAdd is BenchmarkSubmit with one statement per request: 1,000
// concurrent add requests over HTTP, each also building its own receipt's
// inclusion proof.
func BenchmarkAdd(b *testing.B) {
	storagetest.QuietKlog()
	benchAdd(b, newHarness(b), 1, false)
}

// BenchmarkAddKeyed is BenchmarkAdd with an Idempotency-Key on every
// request: two more State writes each (the in-flight marker, the answer).
func BenchmarkAddKeyed(b *testing.B) {
	storagetest.QuietKlog()
	benchAdd(b, newHarness(b), 1, true)
}

// BenchmarkSubmitAWS is BenchmarkSubmit on the aws backend (storage.Open:
// Tessera's AWS driver, its MySQL antispam store and the cross-process
// dedup claims on MariaDB, tiles on an S3-compatible server), with
// awsInflight batches in flight.
func BenchmarkSubmitAWS(b *testing.B) { benchSubmit(b, newAWSHarness(b), awsInflight) }

// BenchmarkTesseraBareAWS is BenchmarkTesseraBare on Tessera's AWS driver
// with its MySQL antispam store, on the same servers, configured as
// storage.Open configures them, with awsInflight iterations in flight.
func BenchmarkTesseraBareAWS(b *testing.B) {
	a := storagetest.NewAWS(b)
	d, as := storagetest.BareAWS(b, a, "vetting")
	benchBare(b, d, as, awsCheckpointInterval, awsInflight)
}

// BenchmarkAddAWS is BenchmarkAdd on the aws backend, with awsInflight
// iterations (1,000 requests each) in flight.
func BenchmarkAddAWS(b *testing.B) { benchAdd(b, newAWSHarness(b), awsInflight, false) }

// BenchmarkAddKeyedAWS is BenchmarkAddKeyed on the aws backend: the
// records are VesperState rows.
func BenchmarkAddKeyedAWS(b *testing.B) { benchAdd(b, newAWSHarness(b), awsInflight, true) }

// benchSubmit posts b.N batches of benchBatch statements, inflight at a
// time, and checks that every entry got a receipt. Entries pushed back
// (503) are submitted again after Retry-After, as a client would.
func benchSubmit(b *testing.B, h *harness, inflight int) {
	batches := make([][]string, b.N)
	bodies := make([][]byte, b.N)
	for n := range batches {
		batches[n] = make([]string, benchBatch)
		for i := range batches[n] {
			batches[n][i] = h.randomStatement()
		}
		bodies[n], _ = json.Marshal(vetting.BatchRequest{Statements: batches[n]})
	}
	r := storagetest.StartRun(b)
	storagetest.RunInflight(b, inflight, func(n int) {
		sts, body := batches[n], bodies[n]
		for len(sts) > 0 {
			if body == nil {
				body, _ = json.Marshal(vetting.BatchRequest{Statements: sts})
			}
			code, out, err := post(h.url+"/v1/add-batch", "application/json", body)
			switch {
			case err != nil:
				r.Fail("add-batch: %v", err)
				return
			case code == http.StatusServiceUnavailable:
				r.PushedBack(len(sts))
				continue
			case code != http.StatusOK:
				r.Fail("add-batch: %d %.200s", code, out)
				return
			}
			var res vetting.BatchResponse
			if err := json.Unmarshal(out, &res); err != nil || len(res.Entries) != len(sts) {
				r.Fail("add-batch: %d entries for %d statements (%v)", len(res.Entries), len(sts), err)
				return
			}
			var again []string
			for i, e := range res.Entries {
				switch {
				case e.Problem != nil && e.Problem.Status == http.StatusServiceUnavailable:
					again = append(again, sts[i])
				case e.Problem != nil || e.Receipt == "":
					r.Fail("add-batch entry: %+v", e.Problem)
				}
			}
			if len(again) > 0 {
				r.PushedBack(len(again))
			}
			sts, body = again, nil
		}
	})
	r.Done(b.N * benchBatch)
}

// benchAdd posts b.N × benchBatch single statements, benchBatch at once
// per iteration and inflight iterations at a time, each with its own
// Idempotency-Key if keyed. Pushed back (503), a statement is submitted
// again (with its key) after Retry-After.
func benchAdd(b *testing.B, h *harness, inflight int, keyed bool) {
	bodies := make([][]byte, b.N*benchBatch)
	for i := range bodies {
		bodies[i] = []byte(h.randomStatement())
	}
	r := storagetest.StartRun(b)
	storagetest.RunInflight(b, inflight, func(n int) {
		var wg sync.WaitGroup
		for i := range benchBatch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var key []string
					if keyed {
						key = []string{idempotency.Header, fmt.Sprintf(`"%d-%d"`, n, i)}
					}
					code, out, err := post(h.url+"/v1/add", "application/jose", bodies[n*benchBatch+i], key...)
					switch {
					case err != nil:
						r.Fail("add: %v", err)
					case code == http.StatusServiceUnavailable:
						r.PushedBack(1)
						continue
					case code != http.StatusOK:
						r.Fail("add: %d %.200s", code, out)
					}
					return
				}
			}()
		}
		wg.Wait()
	})
	r.Done(b.N * benchBatch)
}

// randomStatement is a statement by the ES256 agent about a random digest.
func (h *harness) randomStatement() string {
	pub := jose.JSONWebKey{Key: h.es.Public()}
	var d [32]byte
	rand.Read(d[:])
	st, _ := vetting.NewStatement(&pub, d, "", uint64(h.now.Unix()))
	s, _ := st.Sign(h.es)
	return s
}

// post posts body, with a further header field if given as name, value,
// and returns the status and the response body.
func post(url, contentType string, body []byte, header ...string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := storagetest.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// benchBare appends and awaits b.N × benchBatch entries on Tessera's
// appender over d (with antispam as, if set), benchBatch at once per
// iteration and inflight iterations at a time. An entry pushed back is
// added again after the delay a vesperlog client is asked to wait.
func benchBare(b *testing.B, d tessera.Driver, as tessera.Antispam, interval time.Duration, inflight int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	skey, _, _ := note.GenerateKey(rand.Reader, "example.test/bare")
	signer, _ := note.NewSigner(skey)
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithCheckpointInterval(interval).WithBatching(tessera.DefaultBatchMaxSize, 100*time.Millisecond)
	if as != nil {
		opts = opts.WithAntispam(tessera.DefaultAntispamInMemorySize, as)
	}
	app, shutdown, lr, err := tessera.NewAppender(ctx, d, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer shutdown(ctx)
	aw := tessera.NewPublicationAwaiter(ctx, lr.ReadCheckpoint, 50*time.Millisecond)
	r := storagetest.StartRun(b)
	storagetest.RunInflight(b, inflight, func(n int) {
		var wg sync.WaitGroup
		for i := 0; i < benchBatch; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := make([]byte, 221) // a vetting leaf without subject
				copy(e, fmt.Sprintf("%d/%d", n, i))
				for {
					_, _, err := aw.Await(ctx, app.Add(ctx, tessera.NewEntry(e)))
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

// newAWSHarness is newHarness on the aws backend: a fresh database and
// bucket (storagetest.NewAWS, which skips the benchmark when the servers
// are absent), opened as the server opens them.
func newAWSHarness(b *testing.B) *harness {
	b.Helper()
	a := storagetest.NewAWS(b)
	ctx := context.Background()
	storagetest.QuietKlog()
	be, err := storage.Open(ctx, storage.Config{Backend: storage.AWS, DSN: storagetest.CapDSN(b, a.DSN), Bucket: a.Bucket, S3Endpoint: a.Endpoint})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	st, err := be.Log(ctx, "vetting")
	if err != nil {
		b.Fatal(err)
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.test/vetting")
	signer, _ := note.NewSigner(skey)
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{Signer: signer, Format: vlog.TlogTiles(Identity), Antispam: st.Antispam, Claims: st.Claims,
		CheckpointInterval: awsCheckpointInterval})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close(context.Background()) })

	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	agents := &vetting.Agents{}
	agents, _ = agents.Add("es-agent", jose.JSONWebKey{Key: es.Public()}, "")
	agents, _ = agents.Add("ed-agent", jose.JSONWebKey{Key: ed.Public()}, "")
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := receipts.NewSigner(rk)
	if err != nil {
		b.Fatal(err)
	}
	h := &harness{t: b, log: l, es: es, ed: ed, now: time.Now()}
	svc := New(Config{Log: l, Agents: func() *vetting.Agents { return agents }, Receipts: rs, Now: func() time.Time { return h.now },
		Idempotency: idempotency.New(idempotency.Config{State: be.State()})})
	mux := http.NewServeMux()
	svc.Handle(mux, "/vetting")
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	h.url = srv.URL + "/vetting"
	p, err := policy.ForLog(vkey)
	if err != nil {
		b.Fatal(err)
	}
	h.trust = receipts.Trust{Keys: receipts.NewKeySet(rs.PublicJWK()), Policy: p}
	return h
}
