package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/witness/policy"
)

var witnessCrashCycles = flag.Int("witnesscrash.cycles", 20, "kill -9 cycles of TestWitnessCrash")

// forkTree is one version of the test log of TestWitnessCrash. Each
// submission extends the tree the witness holds with entries of its own,
// so submissions racing from one state are forks of each other: a witness
// that lost or raced an update would cosign two roots for one size.
// A tree shares its parent's stored hashes (tlog's) below base.
type forkTree struct {
	parent *forkTree
	base   int64
	hashes []tlog.Hash
	size   int64
	root   tlog.Hash
}

func (f *forkTree) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		t := f
		for x < t.base {
			t = t.parent
		}
		out[i] = t.hashes[x-t.base]
	}
	return out, nil
}

// extend returns f with entries appended.
func (f *forkTree) extend(entries ...string) (*forkTree, error) {
	c := &forkTree{parent: f, base: tlog.StoredHashCount(f.size), size: f.size}
	for _, e := range entries {
		hs, err := tlog.StoredHashes(c.size, []byte(e), tlog.HashReaderFunc(c.read))
		if err != nil {
			return nil, err
		}
		c.hashes = append(c.hashes, hs...)
		c.size++
	}
	root, err := tlog.TreeHash(c.size, tlog.HashReaderFunc(c.read))
	c.root = root
	return c, err
}

// witnessCrash is the state of TestWitnessCrash: the log, the trees
// submitted, and what the witness answered.
type witnessCrash struct {
	t       *testing.T
	origin  string
	signer  note.Signer
	verify  *policy.Policy // the log's key and the witness's, quorum the witness
	mu      sync.Mutex     // guards the fields below
	trees   map[tlog.Hash]*forkTree
	roots   map[int64]map[tlog.Hash]bool // every root cosigned, by size
	acked   int64                        // the largest size answered 200
	counts  struct{ requests, ok, conflicts, failed int }
	entries int // entries made, for unique entry data
}

// TestWitnessCrash kills vesperwitness with SIGKILL at random moments
// while clients race add-checkpoint requests for a log that forks at
// every request, and checks after each restart that the witness's state
// for the log never went back (its monitoring read is at least the
// largest size it answered 200 for), that it never cosigned two roots
// for one size (every cosignature returned, grouped by size), and that a
// request conflicting with its state gets 409 with its size.
func TestWitnessCrash(t *testing.T) {
	wbin := witnessBinary(t)
	dir := t.TempDir()
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	const origin = "crash.test/witnessed-log"
	skey, vkey, err := note.GenerateKey(crand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), vkey).CombinedOutput(); err != nil {
		t.Fatalf("add-log: %v %s", err, out)
	}
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w1", "-out", filepath.Join(dir, "w1.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	wvkey := regexp.MustCompile(`(?m)^cosignature/v1 vkey: (\S+)$`).FindSubmatch(out)
	if wvkey == nil {
		t.Fatalf("keygen said %q", out)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s\nquorum w1\n", vkey, wvkey[1])))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := (&forkTree{}).extend()
	if err != nil {
		t.Fatal(err)
	}
	wc := &witnessCrash{t: t, origin: origin, signer: signer, verify: pol,
		trees: map[tlog.Hash]*forkTree{empty.root: empty}, roots: map[int64]map[tlog.Hash]bool{}}

	url, proc := startWitness(t, wbin, dir, "w1", "127.0.0.1:0")
	start := time.Now()
	for cycle := range *witnessCrashCycles {
		ctx, stop := context.WithCancel(context.Background())
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
		var wg sync.WaitGroup
		for g := range 3 {
			r := rand.New(rand.NewPCG(rng.Uint64(), uint64(g)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				wc.submitLoop(ctx, hc, url, r)
			}()
		}
		time.Sleep(50*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond))))
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = proc.Wait()
		stop()
		wg.Wait()
		hc.CloseIdleConnections()

		url, proc = startWitness(t, wbin, dir, "w1", "127.0.0.1:0")
		size := wc.checkState(url)
		wc.checkConflict(url, size)
		if t.Failed() {
			t.Fatalf("cycle %d failed (seed %d)", cycle, seed)
		}
	}
	stopProcess(t, proc)
	c := wc.counts
	t.Logf("witness crash test: %d kills in %s; %d add-checkpoint requests: %d cosigned, %d answered 409, %d failed at a kill; "+
		"the witness is at size %d; %d sizes cosigned, one root each",
		*witnessCrashCycles, time.Since(start).Round(time.Second), c.requests, c.ok, c.conflicts, c.failed, wc.acked, len(wc.roots))
	if c.ok == 0 || c.conflicts == 0 {
		t.Fatalf("the load did not exercise the witness: %d cosigned, %d conflicts", c.ok, c.conflicts)
	}
}

// submitLoop sends add-checkpoint requests until ctx ends, each
// extending the tree the witness was last seen at.
func (wc *witnessCrash) submitLoop(ctx context.Context, hc *http.Client, url string, r *rand.Rand) {
	// The tree this client believes the witness holds.
	wc.mu.Lock()
	var cur *forkTree
	for _, tr := range wc.trees {
		if tr.size == 0 {
			cur = tr
		}
	}
	wc.mu.Unlock()
	for ctx.Err() == nil {
		wc.mu.Lock()
		var entries []string
		for range 1 + r.IntN(4) {
			entries = append(entries, fmt.Sprintf("entry %d", wc.entries))
			wc.entries++
		}
		wc.mu.Unlock()
		next, err := cur.extend(entries...)
		if err != nil {
			wc.t.Error(err)
			return
		}
		wc.mu.Lock()
		wc.trees[next.root] = next
		wc.mu.Unlock()
		cp := wc.checkpoint(next)
		status, body, err := wc.post(ctx, hc, url, cur, next, cur.size, cp)
		wc.mu.Lock()
		wc.counts.requests++
		wc.mu.Unlock()
		switch {
		case err != nil:
			wc.mu.Lock()
			wc.counts.failed++
			wc.mu.Unlock()
			continue
		case status == http.StatusOK:
			wc.cosigned(append(cp, body...), true)
			cur = next
		case status == http.StatusConflict:
			wc.mu.Lock()
			wc.counts.conflicts++
			wc.mu.Unlock()
			// Learn the witness's tree from its monitoring read.
			if tr := wc.readState(ctx, hc, url); tr != nil {
				cur = tr
			}
		default:
			wc.t.Errorf("add-checkpoint of size %d from %d: %d %s", next.size, cur.size, status, body)
			return
		}
	}
}

// checkpoint returns the log's signed checkpoint of t.
func (wc *witnessCrash) checkpoint(t *forkTree) []byte {
	b, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", wc.origin, t.size, base64.StdEncoding.EncodeToString(t.root[:]))}, wc.signer)
	if err != nil {
		wc.t.Fatal(err)
	}
	return b
}

// post sends an add-checkpoint request for next, with a proof from the
// tree from (at size old, which a test may set to a wrong one).
func (wc *witnessCrash) post(ctx context.Context, hc *http.Client, url string, from, next *forkTree, old int64, cp []byte) (int, []byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	if old > 0 && old < next.size {
		p, err := tlog.ProveTree(next.size, old, tlog.HashReaderFunc(next.read))
		if err != nil {
			return 0, nil, err
		}
		for _, h := range p {
			b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(cp)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/add-checkpoint", &b)
	if err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// cosigned checks a checkpoint with the witness's cosignature and records
// its root for its size; ack says the witness answered 200 with it.
func (wc *witnessCrash) cosigned(signed []byte, ack bool) *forkTree {
	cp, err := wc.verify.Verify(signed)
	if err != nil {
		wc.t.Errorf("cosigned checkpoint does not verify: %v\n%s", err, signed)
		return nil
	}
	size, root := int64(cp.Size), tlog.Hash(cp.Hash)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if ack {
		wc.counts.ok++
		wc.acked = max(wc.acked, size)
	}
	if wc.roots[size] == nil {
		wc.roots[size] = map[tlog.Hash]bool{}
	}
	wc.roots[size][root] = true
	if len(wc.roots[size]) > 1 {
		wc.t.Errorf("the witness cosigned %d roots for size %d", len(wc.roots[size]), size)
	}
	tr := wc.trees[root]
	if tr == nil || tr.size != size {
		wc.t.Errorf("the witness cosigned a tree of size %d the test never submitted", size)
		return nil
	}
	return tr
}

// readState reads the witness's latest cosigned checkpoint of the log
// (its monitoring read), records it, and returns its tree.
func (wc *witnessCrash) readState(ctx context.Context, hc *http.Client, url string) *forkTree {
	h := sha256.Sum256([]byte(wc.origin))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/"+hex.EncodeToString(h[:])+"/checkpoint", nil)
	if err != nil {
		wc.t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	return wc.cosigned(b, false)
}

// checkState checks, after a restart, that the witness's stored size has
// not gone back below any size it answered 200 for, and returns it.
func (wc *witnessCrash) checkState(url string) int64 {
	tr := wc.readState(context.Background(), http.DefaultClient, url)
	wc.mu.Lock()
	defer wc.mu.Unlock()
	switch {
	case tr == nil && wc.acked > 0:
		wc.t.Errorf("after a restart the witness serves no checkpoint; it had cosigned size %d", wc.acked)
	case tr != nil && tr.size < wc.acked:
		wc.t.Errorf("after a restart the witness is at size %d; it had cosigned size %d", tr.size, wc.acked)
	}
	if tr == nil {
		return 0
	}
	return tr.size
}

// checkConflict sends, after a restart, a request whose old size is not
// the witness's: it must answer 409 with its size, and change nothing.
func (wc *witnessCrash) checkConflict(url string, size int64) {
	wc.mu.Lock()
	var cur *forkTree
	for _, tr := range wc.trees {
		if tr.size == size && wc.roots[size][tr.root] {
			cur = tr
		}
	}
	wc.mu.Unlock()
	if cur == nil {
		return
	}
	next, err := cur.extend("conflict probe " + strconv.FormatInt(size, 10))
	if err != nil {
		wc.t.Fatal(err)
	}
	old := size - 1
	if size == 0 {
		old = 1
	}
	status, body, err := wc.post(context.Background(), http.DefaultClient, url, cur, next, old, wc.checkpoint(next))
	if err != nil || status != http.StatusConflict || strings.TrimSpace(string(body)) != strconv.FormatInt(size, 10) {
		wc.t.Errorf("add-checkpoint with old %d when the witness is at %d: %d %q %v; want 409 %d", old, size, status, body, err, size)
	}
	if after := wc.checkState(url); after != size {
		wc.t.Errorf("a refused request moved the witness from %d to %d", size, after)
	}
}
