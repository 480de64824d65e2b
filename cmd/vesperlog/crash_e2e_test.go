package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// The crash test: the real vesperlog under concurrent load from a few
// agents, killed with SIGKILL at random moments and restarted on the same
// storage. CI runs a short version; the README's long run is
//
//	go test ./cmd/vesperlog -run 'TestCrash/posix' -crash.cycles=500 -timeout 2h -v
var (
	crashCycles = flag.Int("crash.cycles", 20, "kill -9 cycles of TestCrash")
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of TestCrash's and TestWitnessCrash's kill times and load (0: from the clock); a failure logs the seed to replay")
)

const (
	crashAgents      = 3                      // agents submitting at once, two goroutines each
	crashMaxBatch    = 40                     // statements in an add-batch, at most
	crashLoadMin     = 200 * time.Millisecond // load before a kill, at least
	crashLoadMax     = 1500 * time.Millisecond
	crashResendAfter = 8 // logged statements re-sent after each restart
)

// TestCrash kills vesperlog with SIGKILL under load, again and again, and
// after each restart checks what the issue promises: every receipt issued
// so far proves its entry, at its index, in the latest checkpoint; no
// statement holds two indexes and a statement re-sent after the restart
// gets its first one; every checkpoint observed is consistent with the
// latest. A request in flight at the kill may fail; its statement is sent
// again after the restart and must then get the index it may already have.
func TestCrash(t *testing.T) {
	server, cli := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) {
		cycles := *crashCycles
		if be.name != storage.POSIX {
			// aws's cycles take ~12 s (its checkpoints come each second,
			// and a restart reconnects to MariaDB and S3): a few check that
			// its recovery keeps the same promises; the long run is posix's.
			cycles = min(cycles, 5)
		}
		testCrash(t, be, server, cli, cycles)
	})
}

// crashAgent is one agent of the crash test, with its key.
type crashAgent struct {
	key   crypto.Signer
	pub   jose.JSONWebKey
	thumb [32]byte
}

// crashStatement is a statement the test submitted: which agent, which
// digest. It is signed afresh (new iat) each time it is sent; the log's
// dedup identity is the agent and the digest.
type crashStatement struct {
	agent  int
	digest [32]byte
	sub    string
}

// crashReceipt is what the test keeps of a verified receipt: enough to
// check it again against every later checkpoint without keeping the JWS.
type crashReceipt struct {
	index    uint64
	leafHash [32]byte
	cpSize   uint64
	cpHash   [32]byte
}

// crashState is what the crash test has learnt from the log's answers.
type crashState struct {
	t      *testing.T
	agents []crashAgent
	trust  receipts.Trust
	origin string

	// mu guards everything below; the load goroutines record into it.
	mu sync.Mutex
	// index is the index the log answered for each identity (a 200).
	index map[string]uint64
	// byIndex is the identity the log answered for at each index.
	byIndex map[uint64]string
	// stmts is every statement answered with an index, for re-sending.
	stmts []crashStatement
	// unsure are the statements whose request failed: they may or may
	// not have been logged, and are sent again after the restart.
	unsure []crashStatement
	// fresh are the receipts answered since the last check, unverified.
	fresh []freshReceipt
	// checkpoints are the checkpoints the poller saw, in order.
	checkpoints [][]byte

	receipts []crashReceipt // verified receipts, checked again each cycle
	counts   crashCounts
}

type freshReceipt struct {
	jws   string
	index uint64
	id    string
}

type crashCounts struct {
	statements, resent, failed, requests int
	// inFlight counts statements whose request failed at a kill but
	// which had been logged: the retry found them as duplicates.
	inFlight int
}

func testCrash(t *testing.T, be *backend, server, cli string, cycles int) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash test: seed %d (replay with -crash.seed=%d), %d cycles", seed, seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()
	dir := t.TempDir()
	args := []string{"-checkpoint-interval", "100ms", "-publish-timeout", "20s"}

	srv := be.start(t, server, dir, args...)
	cs := &crashState{t: t, index: map[string]uint64{}, byIndex: map[uint64]string{}}
	for i := range crashAgents {
		name := fmt.Sprintf("ca%d", i)
		runVesper(t, cli, dir, 0, "keygen", "agent", "-out", name+".jwk")
		be.addAgent(t, server, cli, dir, "-name", name, "-key", name+".pub.jwk")
		cs.agents = append(cs.agents, loadAgent(t, filepath.Join(dir, name+".jwk")))
	}
	waitAgents(t, srv.url, "ca0", "ca1", "ca2")
	conf, err := client.FetchConfiguration(ctx, nil, srv.url)
	if err != nil {
		t.Fatal(err)
	}
	if cs.trust, err = conf.Trust(); err != nil {
		t.Fatal(err)
	}
	cs.origin = "e2e.test/vetting"

	var (
		last     *policy.Checkpoint // the latest checkpoint checked
		restarts []time.Duration
		checked  int // receipt checks, summed over cycles
		start    = time.Now()
	)
	for cycle := range cycles {
		// Load, then kill -9 at a random moment.
		load := crashLoadMin + time.Duration(rng.Int64N(int64(crashLoadMax-crashLoadMin)))
		loadCtx, stopLoad := context.WithCancel(ctx)
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		var wg sync.WaitGroup
		for g := range 2 * crashAgents {
			wg.Add(1)
			r := rand.New(rand.NewPCG(rng.Uint64(), uint64(g)))
			go func() {
				defer wg.Done()
				cs.submitLoop(loadCtx, hc, srv.url, g%crashAgents, r)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.pollCheckpoints(loadCtx, hc, srv.url)
		}()
		time.Sleep(load)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = srv.cmd.Wait()
		stopLoad()
		wg.Wait()
		hc.CloseIdleConnections()

		// Restart on the same storage.
		t0 := time.Now()
		srv = be.start(t, server, dir, args...)
		restarts = append(restarts, time.Since(t0))

		// Re-send what failed, and some statements logged before: each
		// must get its first index.
		hc = &http.Client{Timeout: 30 * time.Second}
		cs.resend(ctx, hc, srv.url, rng)

		var n int
		last, n = cs.check(ctx, srv.url, last, rng)
		checked += n
		if t.Failed() {
			t.Fatalf("cycle %d failed (seed %d)", cycle, seed)
		}
		if testing.Verbose() && (cycle%25 == 0 || cycle == cycles-1) {
			t.Logf("cycle %d: log size %d, %d receipts, %d statements", cycle, last.Size, len(cs.receipts), cs.counts.statements)
		}
	}
	srv.stop(t)

	var maxR, sum time.Duration
	for _, d := range restarts {
		maxR = max(maxR, d)
		sum += d
	}
	c := cs.counts
	t.Logf("crash test (%s): %d kills in %s, seed %d; %d statements in %d requests (%d failed at a kill and were sent again, %d of them logged before the kill), %d duplicates re-sent; "+
		"log size %d; %d receipts issued, %d receipt checks, 0 lost; restart max %s, mean %s",
		be.name, cycles, time.Since(start).Round(time.Second), seed, c.statements, c.requests, c.failed, c.inFlight, c.resent,
		last.Size, len(cs.receipts), checked, maxR.Round(time.Millisecond), (sum / time.Duration(len(restarts))).Round(time.Millisecond))
}

// loadAgent reads an agent's private JWK, as vesper keygen agent writes it.
func loadAgent(t *testing.T, path string) crashAgent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	signer, ok := k.Key.(crypto.Signer)
	if !ok {
		t.Fatalf("%s: %T is not a private key", path, k.Key)
	}
	pub := jose.JSONWebKey{Key: signer.Public()}
	thumb, err := vetting.Thumbprint(&pub)
	if err != nil {
		t.Fatal(err)
	}
	return crashAgent{key: signer, pub: pub, thumb: thumb}
}

func (cs *crashState) identity(s crashStatement) string {
	return string(vetting.Identity(cs.agents[s.agent].thumb, s.digest))
}

// sign signs s afresh, with the current time as its iat.
func (cs *crashState) sign(s crashStatement) (string, error) {
	a := cs.agents[s.agent]
	st, err := vetting.NewStatement(&a.pub, s.digest, s.sub, uint64(time.Now().Unix()))
	if err != nil {
		return "", err
	}
	return st.Sign(a.key)
}

// submitLoop submits single statements and batches as agent until ctx
// ends, now and then re-sending a statement already logged.
func (cs *crashState) submitLoop(ctx context.Context, hc *http.Client, url string, agent int, r *rand.Rand) {
	vc := client.NewVetting(url+"/vetting", hc)
	for ctx.Err() == nil {
		var batch []crashStatement
		resend := false
		switch p := r.IntN(10); {
		case p == 0:
			cs.mu.Lock()
			if len(cs.stmts) > 0 {
				batch = append(batch, cs.stmts[r.IntN(len(cs.stmts))])
				resend = true
			}
			cs.mu.Unlock()
		case p < 5:
			batch = cs.newStatements(agent, r, 1)
		default:
			batch = cs.newStatements(agent, r, 2+r.IntN(crashMaxBatch-1))
		}
		if len(batch) == 0 {
			continue
		}
		if failed := cs.send(ctx, vc, batch, len(batch) > 1 || r.IntN(4) == 0, resend); len(failed) > 0 {
			cs.mu.Lock()
			cs.unsure = append(cs.unsure, failed...)
			cs.counts.failed += len(failed)
			cs.mu.Unlock()
		}
	}
}

func (cs *crashState) newStatements(agent int, r *rand.Rand, n int) []crashStatement {
	out := make([]crashStatement, n)
	for i := range out {
		out[i].agent = agent
		for j := 0; j < 32; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				out[i].digest[j+k] = byte(v >> (8 * k))
			}
		}
		if r.IntN(2) == 0 {
			out[i].sub = fmt.Sprintf("crash_%x", out[i].digest[:4])
		}
	}
	return out
}

// send submits batch (with /v1/add-batch if asBatch, else its one
// statement with /v1/add) and records the answers: an index and a receipt
// for each statement answered. It returns the statements not answered,
// which may or may not have been logged. resend says the statements were
// answered before.
func (cs *crashState) send(ctx context.Context, vc *client.Vetting, batch []crashStatement, asBatch, resend bool) []crashStatement {
	signed := make([]string, len(batch))
	for i, s := range batch {
		var err error
		if signed[i], err = cs.sign(s); err != nil {
			cs.t.Error(err)
			return batch
		}
	}
	var answers []vetting.AddResponse
	var err error
	if asBatch {
		var b *vetting.BatchResponse
		if b, err = vc.AddBatch(ctx, signed); err == nil {
			answers = b.Entries
		}
	} else {
		var a *vetting.AddResponse
		if a, err = vc.Add(ctx, signed[0]); err == nil {
			answers = []vetting.AddResponse{*a}
		}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.counts.requests++
	if resend {
		cs.counts.resent += len(batch)
	}
	// Only the server's trouble may refuse a valid statement: overload
	// (429, 503) or a failure (5xx).
	refused := func(status int) bool { return status < 500 && status != http.StatusTooManyRequests }
	var api *client.APIError
	if errors.As(err, &api) && refused(api.Status) {
		cs.t.Errorf("a valid submission refused: %v", err)
	}
	var failed []crashStatement
	for i, s := range batch {
		if err != nil || answers[i].Problem != nil {
			if err == nil && refused(answers[i].Problem.Status) {
				cs.t.Errorf("a valid statement in a batch refused: %+v", *answers[i].Problem)
			}
			failed = append(failed, s)
			continue
		}
		cs.record(s, answers[i], resend)
	}
	return failed
}

// record keeps one answered statement; the caller holds mu.
func (cs *crashState) record(s crashStatement, a vetting.AddResponse, resend bool) {
	id := cs.identity(s)
	if first, ok := cs.index[id]; ok {
		if first != a.Index {
			cs.t.Errorf("statement answered index %d, then %d", first, a.Index)
		}
		if !a.Duplicate {
			cs.t.Errorf("statement logged at %d is not a duplicate the second time", first)
		}
	} else {
		if resend {
			cs.t.Errorf("a re-sent statement was not known")
		}
		if a.Duplicate {
			cs.counts.inFlight++
		}
		if other, ok := cs.byIndex[a.Index]; ok && other != id {
			cs.t.Errorf("index %d answered for two statements", a.Index)
		}
		cs.index[id] = a.Index
		cs.byIndex[a.Index] = id
		cs.stmts = append(cs.stmts, s)
		cs.counts.statements++
	}
	if a.Receipt == "" {
		cs.t.Errorf("index %d answered without a receipt", a.Index)
	}
	cs.fresh = append(cs.fresh, freshReceipt{jws: a.Receipt, index: a.Index, id: id})
}

// pollCheckpoints keeps every distinct checkpoint the server publishes
// while ctx lasts.
func (cs *crashState) pollCheckpoints(ctx context.Context, hc *http.Client, url string) {
	var prev []byte
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/vetting/checkpoint", nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK && !bytes.Equal(b, prev) {
				prev = b
				cs.mu.Lock()
				cs.checkpoints = append(cs.checkpoints, b)
				cs.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// resend sends again, after a restart, every statement whose request
// failed and some that were logged, until each is answered (bounded).
func (cs *crashState) resend(ctx context.Context, hc *http.Client, url string, rng *rand.Rand) {
	vc := client.NewVetting(url+"/vetting", hc)
	cs.mu.Lock()
	unsure := cs.unsure
	cs.unsure = nil
	var logged []crashStatement
	for range min(crashResendAfter, len(cs.stmts)) {
		logged = append(logged, cs.stmts[rng.IntN(len(cs.stmts))])
	}
	cs.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for _, g := range []struct {
		stmts  []crashStatement
		resend bool
	}{{logged, true}, {unsure, false}} {
		for group := g.stmts; len(group) > 0; {
			// Some one at a time, by either path; the rest in batches.
			n, asBatch := min(len(group), crashMaxBatch), true
			if rng.IntN(3) == 0 {
				n, asBatch = 1, rng.IntN(2) == 0
			}
			failed := cs.send(ctx, vc, group[:n], asBatch, g.resend)
			group = append(group[n:], failed...)
			if len(failed) == 0 {
				continue
			}
			if time.Now().After(deadline) {
				cs.t.Errorf("%d statements still unanswered a minute after the restart", len(group))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// check reads the whole log from the restarted server and checks it
// against everything the test was told; it returns the latest checkpoint
// and how many receipts it checked.
func (cs *crashState) check(ctx context.Context, url string, prev *policy.Checkpoint, rng *rand.Rand) (*policy.Checkpoint, int) {
	t := cs.t
	t.Helper()
	f, err := client.NewHTTPFetcher(url+"/vetting", client.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := &client.Log{Origin: cs.origin, Policy: cs.trust.PolicyFor(cs.origin), Fetch: f}
	cp, _, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// The latest checkpoint is consistent with the one checked last cycle,
	// by the client's consistency proof from the served tiles.
	if prev != nil {
		if _, err := l.VerifyConsistency(ctx, prev, cp); err != nil {
			t.Fatalf("checkpoint %d after restart is not consistent with %d before: %v", cp.Size, prev.Size, err)
		}
	}

	// Every entry, read as a stranger would; the tree they make is the
	// one the checkpoint signs, and no identity is logged twice.
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	leafHashes := make([][32]byte, 0, cp.Size)
	ids := make(map[string]uint64, cp.Size)
	for e, err := range l.Entries(ctx, cp, 0, 4) {
		if err != nil {
			t.Fatalf("reading entries: %v", err)
		}
		leaf, err := vetting.ParseLeaf(e.Data)
		if err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		id := string(leaf.Identity())
		if first, ok := ids[id]; ok {
			t.Errorf("entries %d and %d are one statement (agent %x, digest %x)", first, e.Index, leaf.AgentKey[:4], leaf.Digest[:4])
		}
		ids[id] = e.Index
		leafHashes = append(leafHashes, [32]byte(rfc6962.DefaultHasher.HashLeaf(e.Data)))
		hs, err := tlog.StoredHashes(int64(e.Index), e.Data, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	if uint64(len(leafHashes)) != cp.Size {
		t.Fatalf("read %d entries of %d", len(leafHashes), cp.Size)
	}
	rootAt := func(n uint64) tlog.Hash {
		h, err := tlog.TreeHash(int64(n), hr)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if cp.Size > 0 && rootAt(cp.Size) != tlog.Hash(cp.Hash) {
		t.Fatalf("the entries served make root %x, the checkpoint of size %d says %x", rootAt(cp.Size), cp.Size, cp.Hash)
	}

	cs.mu.Lock()
	fresh, observed := cs.fresh, cs.checkpoints
	cs.fresh, cs.checkpoints = nil, nil
	cs.mu.Unlock()

	// Every checkpoint seen is signed, no smaller than the one before it,
	// and its root is that of the latest tree's prefix of its size.
	size := uint64(0)
	if prev != nil {
		size = prev.Size
	}
	for _, raw := range observed {
		c, err := cs.trust.PolicyFor(cs.origin).Verify(raw)
		if err != nil {
			t.Fatalf("observed checkpoint: %v\n%s", err, raw)
		}
		if c.Size < size {
			t.Errorf("observed checkpoint of size %d after one of %d", c.Size, size)
		}
		size = max(size, c.Size)
		if c.Size > cp.Size {
			t.Errorf("observed checkpoint of size %d, the log now serves %d: rolled back", c.Size, cp.Size)
		} else if c.Size > 0 && rootAt(c.Size) != tlog.Hash(c.Hash) {
			t.Errorf("observed checkpoint of size %d is not a prefix of the latest (size %d)", c.Size, cp.Size)
		}
	}

	// New receipts verify with the project's verifier and are for the
	// statement answered.
	for _, fr := range fresh {
		v, err := receipts.Verify(fr.jws, cs.trust)
		if err != nil {
			t.Errorf("receipt for index %d: %v", fr.index, err)
			continue
		}
		leaf, err := vetting.ParseLeaf(v.Entry)
		if err != nil || v.Index != fr.index || string(leaf.Identity()) != fr.id {
			t.Errorf("receipt for index %d is for index %d, another statement, or unreadable (%v)", fr.index, v.Index, err)
			continue
		}
		cs.receipts = append(cs.receipts, crashReceipt{
			index: v.Index, leafHash: [32]byte(rfc6962.DefaultHasher.HashLeaf(v.Entry)), cpSize: v.Checkpoint.Size, cpHash: v.Checkpoint.Hash,
		})
	}

	// Every receipt so far: its entry is at its index in the latest
	// tree, and its checkpoint is a prefix of the latest.
	for _, r := range cs.receipts {
		switch {
		case r.index >= cp.Size || r.cpSize > cp.Size:
			t.Errorf("receipt for index %d (checkpoint %d) lost: the log is at size %d", r.index, r.cpSize, cp.Size)
		case leafHashes[r.index] != r.leafHash:
			t.Errorf("receipt for index %d: another entry is at that index now", r.index)
		case rootAt(r.cpSize) != tlog.Hash(r.cpHash):
			t.Errorf("receipt for index %d: its checkpoint of size %d is not a prefix of the latest", r.index, r.cpSize)
		}
	}
	// And every index answered holds the statement answered.
	cs.mu.Lock()
	for id, i := range cs.index {
		if j, ok := ids[id]; !ok || i != j {
			t.Errorf("a statement answered index %d is at %d in the log (present: %v)", i, j, ok)
		}
	}
	cs.mu.Unlock()
	// A few receipts, proven once more by the client from the served tiles.
	for range min(10, len(cs.receipts)) {
		r := cs.receipts[rng.IntN(len(cs.receipts))]
		if err := l.VerifyInclusion(ctx, cp, r.index, r.leafHash[:]); err != nil {
			t.Errorf("receipt for index %d: %v", r.index, err)
		}
	}
	return cp, len(cs.receipts)
}
