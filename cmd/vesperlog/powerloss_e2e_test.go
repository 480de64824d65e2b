package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage/faultfs"
)

var (
	powerlossCuts = flag.Int("powerloss.cuts", 10, "simulated power cuts in TestPowerLoss (the README reports a run of 100)")
	powerlossSeed = flag.Uint64("powerloss.seed", 0, "seed of TestPowerLoss's cut moments; 0: from the clock")
)

// powerMount is a faultfs mount that a test cuts and mounts again.
type powerMount struct {
	backing, mnt string
	fs           *faultfs.FS
	dropped      int      // lines of all cut reports
	last         []string // the last cut's report
}

func newPowerMount(t *testing.T, mnt string) *powerMount {
	t.Helper()
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &powerMount{backing: t.TempDir(), mnt: mnt}
	m.mount(t)
	t.Cleanup(func() {
		if t.Failed() && m.last != nil {
			t.Logf("the last cut of %s dropped:\n%s", mnt, strings.Join(m.last, "\n"))
		}
		if m.fs != nil {
			if err := m.fs.Unmount(); err != nil {
				t.Error(err)
			}
		}
	})
	return m
}

func (m *powerMount) mount(t *testing.T) {
	t.Helper()
	f, err := faultfs.Mount(m.backing, m.mnt)
	if err != nil {
		t.Fatal(err)
	}
	m.fs = f
}

// cut cuts the power of the mount (whose processes are dead) and mounts
// what survived.
func (m *powerMount) cut(t *testing.T) {
	t.Helper()
	report, err := m.fs.Cut()
	m.fs = nil
	if err != nil {
		t.Fatal(err)
	}
	m.dropped += len(report)
	m.last = report
	m.mount(t)
}

// issued is a receipt the log answered 200 with.
type issued struct {
	label   string
	digest  [32]byte
	index   uint64
	receipt string
	cycle   int
}

// TestPowerLoss runs vesperlog on the posix backend, and a vesperwitness
// whose cosignature every checkpoint needs, each with its state on a faultfs
// mount, which drops at a power cut every write not fsynced (file and
// directory, strict POSIX). Each cycle: single and batch submissions from
// concurrent clients, a cut at a random moment (kill -9 of both processes,
// then faultfs's Cut), a restart on what survived. After each restart:
//   - every receipt issued (a 200 answer) before any cut verifies offline,
//     its entry is the one served at its index, and its checkpoint is a
//     prefix of the served log;
//   - the served log holds each statement once;
//   - statements re-sent (signed anew) get their first index;
//   - the witness's stored checkpoint is no smaller than any it cosigned
//     before, and no two cosigned checkpoints of one size differ.
//
// -powerloss.cuts sets the number of cycles (CI runs 10), -powerloss.seed
// replays the cut moments of a run.
func TestPowerLoss(t *testing.T) {
	faultfs.Require(t)
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	seed := *powerlossSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -powerloss.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	dir := t.TempDir()
	data := newPowerMount(t, filepath.Join(dir, "data"))
	wstate := newPowerMount(t, filepath.Join(dir, "w1-state"))

	// The log's key and registry come from a first start; the agent is
	// registered while it is down.
	first := startServer(t, server, dir)
	vkey := first.vkey
	first.stop(t)
	va := newAgentKey(t, cli, dir, "va")
	runVesper(t, cli, dir, 0, "agents", "add", "-agents", "data/agents.json", "-name", "va", "-key", "va.pub.jwk")

	// One witness, required for every checkpoint, with its state on faultfs.
	if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), vkey).CombinedOutput(); err != nil {
		t.Fatalf("add-log: %v %s", err, out)
	}
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w1", "-out", filepath.Join(dir, "w1.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	wvkey := regexp.MustCompile(`(?m)^cosignature/v1 vkey: (\S+)$`).FindStringSubmatch(string(out))
	if wvkey == nil {
		t.Fatalf("keygen said %q", out)
	}
	wurl, witness := startWitness(t, wbin, dir, "w1", "127.0.0.1:0")
	waddr := strings.TrimPrefix(wurl, "http://")
	pol := fmt.Sprintf("witness w1 %s %s\nquorum w1\n", wvkey[1], wurl)
	if err := os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	originHash := sha256.Sum256([]byte("e2e.test/vetting"))
	witnessCheckpointURL := wurl + "/" + hex.EncodeToString(originHash[:]) + "/checkpoint"

	var (
		trust          receipts.Trust // pinned from the first witnessed start
		receiptsIssued []issued
		cosigned       = map[uint64]string{} // size -> root of every checkpoint w1 cosigned that we saw
		maxCosigned    uint64
		resent         int
		maxCatchUp     time.Duration // the longest a restarted log pushed back writes
		stats          faultfs.Stats
	)
	start := time.Now()
	for cycle := 0; cycle < *powerlossCuts; cycle++ {
		srv := startServer(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "10s")
		if cycle == 0 {
			trust = trustOf(t, srv.url)
		} else {
			checkAfterCut(t, cycle, srv, vkey, trust, va, receiptsIssued)
			n, wait := checkDedup(t, rng, srv.url, va, receiptsIssued, cycle)
			resent, maxCatchUp = resent+n, max(maxCatchUp, wait)
		}
		// Load until the cut: three workers adding one statement at a
		// time, one adding batches of 16.
		stop := make(chan struct{})
		var mu sync.Mutex // guards got
		var got []issued
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() { // ends at the cut: it stops at close(stop)
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					var labels []string
					var stmts []string
					var digests [][32]byte
					n := 1
					if w == 3 {
						n = 16
					}
					for j := range n {
						label := fmt.Sprintf("cycle %d worker %d statement %d.%d", cycle, w, k, j)
						jws, d := va.statement(label)
						labels, stmts, digests = append(labels, label), append(stmts, jws), append(digests, d)
					}
					if n == 1 {
						s := submit(srv.url, 0, labels[0], stmts[0], digests[0])
						if s.ok() {
							mu.Lock()
							got = append(got, issued{labels[0], digests[0], s.res.Index, s.res.Receipt, cycle})
							mu.Unlock()
						}
						continue
					}
					res, err := client.NewVetting(srv.url+"/vetting", loadClient).AddBatch(t.Context(), stmts)
					if err != nil {
						continue
					}
					mu.Lock()
					for j, e := range res.Entries {
						if e.Problem == nil && e.Receipt != "" {
							got = append(got, issued{labels[j], digests[j], e.Index, e.Receipt, cycle})
						}
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond))))

		// The power cut: both processes die at once, then their disks
		// lose what was not synced.
		_ = srv.cmd.Process.Kill()
		_ = witness.Process.Kill()
		_ = srv.cmd.Wait()
		_ = witness.Wait()
		close(stop)
		wg.Wait()
		s1, s2 := data.fs.Stats(), wstate.fs.Stats()
		stats.FileSyncs += s1.FileSyncs + s2.FileSyncs
		stats.SyncWrites += s1.SyncWrites + s2.SyncWrites
		stats.DirSyncs += s1.DirSyncs + s2.DirSyncs
		data.cut(t)
		wstate.cut(t)
		receiptsIssued = append(receiptsIssued, got...)
		t.Logf("cut %d: %d receipts issued this cycle (%d in all); the cut dropped %d entries or files of the log's disk, %d of the witness's%s",
			cycle+1, len(got), len(receiptsIssued), len(data.last), len(wstate.last), cutReport(append(data.last, wstate.last...), 8))

		// The witness comes back first, on its address, with what survived.
		_, witness = startWitness(t, wbin, dir, "w1", waddr)
		size, root := witnessState(t, witnessCheckpointURL)
		for _, r := range got {
			v, err := receipts.Verify(r.receipt, trust)
			if err != nil {
				t.Fatalf("receipt for %q, issued before cut %d: %v", r.label, cycle+1, err)
			}
			s, rt := checkpointRoot(t, v)
			if prev, ok := cosigned[s]; ok && prev != string(rt) {
				t.Fatalf("w1 cosigned two roots for size %d", s)
			}
			cosigned[s] = string(rt)
			maxCosigned = max(maxCosigned, s)
		}
		if size < maxCosigned {
			t.Fatalf("after cut %d the witness's stored checkpoint has size %d; it had cosigned size %d", cycle+1, size, maxCosigned)
		}
		if prev, ok := cosigned[size]; ok && prev != string(root) {
			t.Fatalf("after cut %d the witness stores another root for size %d than it cosigned", cycle+1, size)
		}
		cosigned[size] = string(root)
		maxCosigned = max(maxCosigned, size)
	}
	// The last check, after the last cut.
	srv := startServer(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "10s")
	l := checkAfterCut(t, *powerlossCuts, srv, vkey, trust, va, receiptsIssued)
	n, wait := checkDedup(t, rng, srv.url, va, receiptsIssued, *powerlossCuts)
	resent, maxCatchUp = resent+n, max(maxCatchUp, wait)
	t.Logf("power loss: %d cuts in %s (seed %d): %d receipts issued, all verified after every later cut, 0 lost; log size %d, no statement twice; %d statements re-sent after cuts, each at its first index (writes pushed back at most %s after a restart, while the dedup index caught up); witness size never went back (%d cosigned sizes seen); cuts dropped %d entries or files (log disk) and %d (witness disk); %d file syncs, %d O_SYNC writes, %d directory syncs",
		*powerlossCuts, time.Since(start).Round(time.Second), seed, len(receiptsIssued), l.size, resent, maxCatchUp.Round(100*time.Millisecond), len(cosigned), data.dropped, wstate.dropped, stats.FileSyncs, stats.SyncWrites, stats.DirSyncs)
}

// checkAfterCut checks, on the restarted server, every receipt issued so
// far (under tr, the trust pinned before the first cut) and that no
// statement is logged twice; it returns the log it read.
func checkAfterCut(t *testing.T, cycle int, srv *running, vkey string, tr receipts.Trust, va *agentKey, all []issued) *loggedLog {
	t.Helper()
	l, lost := lostReceipts(t, srv, vkey, tr, va, all)
	for _, e := range lost {
		t.Errorf("after cut %d, %s", cycle, e)
	}
	if len(lost) > 0 {
		t.FailNow() // the mounts' cleanup logs what their last cuts dropped
	}
	for id, at := range l.at {
		if len(at) > 1 {
			t.Errorf("after cut %d the statement %x is logged at %v", cycle, id, at)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return l
}

// lostReceipts reads the log served by srv and says, one line each, which
// receipts of all it no longer honours: the receipt does not verify under
// tr, or the log serves another entry at its index, or its checkpoint is
// not a prefix of the served log. A new log key loses them all.
func lostReceipts(t *testing.T, srv *running, vkey string, tr receipts.Trust, va *agentKey, all []issued) (*loggedLog, []string) {
	t.Helper()
	if srv.vkey != vkey {
		return nil, []string{fmt.Sprintf("all %d receipts are lost: the log's key changed from %s to %s", len(all), vkey, srv.vkey)}
	}
	l := readLog(t, srv.url, vkey)
	var lost []string
	for _, r := range all {
		v, err := verifyReceipt(tr, r.receipt, r.index, va, r.digest)
		if err == nil && r.index >= l.size {
			err = fmt.Errorf("index %d is beyond the log's size %d", r.index, l.size)
		}
		if err == nil && string(l.entries[r.index]) != string(v.Entry) {
			err = fmt.Errorf("the log serves another entry at index %d", r.index)
		}
		if err == nil {
			size, root := checkpointRoot(t, v)
			if size > l.size {
				err = fmt.Errorf("its checkpoint has size %d, the log %d", size, l.size)
			} else {
				l.checkConsistent(t, size, root)
			}
		}
		if err != nil {
			lost = append(lost, fmt.Sprintf("the receipt for %q (cycle %d, index %d) is lost: %v", r.label, r.cycle, r.index, err))
		}
	}
	return l, lost
}

// checkDedup re-sends, signed anew, some statements logged before the cut
// (those of the cycle just cut first) and checks each gets its first index.
// It returns how many it sent, and how long the log pushed back the first.
func checkDedup(t *testing.T, rng *rand.Rand, url string, va *agentKey, all []issued, cycle int) (int, time.Duration) {
	t.Helper()
	var pick []issued
	for i := len(all) - 1; i >= 0 && all[i].cycle == cycle-1 && len(pick) < 10; i-- {
		pick = append(pick, all[i])
	}
	for range 5 {
		if len(all) > 0 {
			pick = append(pick, all[rng.IntN(len(all))])
		}
	}
	start := time.Now()
	var wait time.Duration
	for i, r := range pick {
		jws, d := va.statement(r.label)
		var s *submission
		// A 503 while the dedup index catches up with the log is right.
		eventually(t, 60*time.Second, "re-sending "+r.label, func() (bool, string) {
			s = submit(url, 0, r.label, jws, d)
			return s.status != http.StatusServiceUnavailable, fmt.Sprint(s.err)
		})
		if !s.ok() || !s.res.Duplicate || s.res.Index != r.index {
			t.Fatalf("after cut %d, %q (first at %d) re-sent: %v, index %d, duplicate %v", cycle, r.label, r.index, s.err, s.res.Index, s.res.Duplicate)
		}
		if i == 0 {
			wait = time.Since(start)
		}
	}
	return len(pick), wait
}

// witnessState reads the witness's stored checkpoint: size and root.
func witnessState(t *testing.T, u string) (uint64, []byte) {
	t.Helper()
	var body []byte
	eventually(t, 10*time.Second, "the witness's checkpoint", func() (bool, string) {
		resp, err := http.Get(u)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200 || resp.StatusCode == 404, fmt.Sprint(resp.StatusCode)
	})
	lines := strings.SplitN(string(body), "\n", 4)
	if len(lines) < 4 {
		return 0, nil // nothing cosigned yet
	}
	var size uint64
	if _, err := fmt.Sscan(lines[1], &size); err != nil {
		t.Fatalf("witness checkpoint %q: %v", body, err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return size, root
}

// firstLines formats up to n lines of a cut's report for the test log.
func cutReport(report []string, n int) string {
	if len(report) == 0 {
		return ""
	}
	more := ""
	if len(report) > n {
		report, more = report[:n], fmt.Sprintf("\n\t(%d more)", len(report)-n)
	}
	return ":\n\t" + strings.Join(report, "\n\t") + more
}

// TestPowerLossFindsUnsyncedWrite proves that the power-loss checks find a
// file that vesperlog writes without fsync: a vesperlog built with the tag
// powerlossbug (keys.WriteFile then syncs neither file nor directory) issues
// receipts, the power is cut, and after the restart the receipts must be
// found lost, or the server must fail to start.
func TestPowerLossFindsUnsyncedWrite(t *testing.T) {
	faultfs.Require(t)
	_, cli := binaries(t)
	bdir := t.TempDir()
	if out, err := exec.Command("go", "build", "-tags", "powerlossbug", "-o", bdir+"/", "github.com/vesperlog/vesperlog/cmd/vesperlog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	server := filepath.Join(bdir, "vesperlog")

	dir := t.TempDir()
	data := newPowerMount(t, filepath.Join(dir, "data"))
	first := startServer(t, server, dir)
	vkey := first.vkey
	first.stop(t)
	va := newAgentKey(t, cli, dir, "va")
	runVesper(t, cli, dir, 0, "agents", "add", "-agents", "data/agents.json", "-name", "va", "-key", "va.pub.jwk")
	srv := startServer(t, server, dir)
	trust := trustOf(t, srv.url)
	var all []issued
	for i := range 5 {
		label := fmt.Sprintf("statement %d", i)
		jws, d := va.statement(label)
		s := submit(srv.url, 0, label, jws, d)
		if !s.ok() {
			t.Fatal(s.err)
		}
		all = append(all, issued{label, d, s.res.Index, s.res.Receipt, 0})
	}
	_ = srv.cmd.Process.Kill()
	_ = srv.cmd.Wait()
	data.cut(t)
	t.Logf("the cut dropped%s", cutReport(data.last, 20))

	// A server that cannot start on what survived has lost every receipt
	// as surely: that is found too.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	probe := exec.CommandContext(ctx, server, "-addr", "127.0.0.1:0", "-data", "data", "-vetting-origin", "e2e.test/vetting")
	probe.Dir = dir
	out, err := probe.CombinedOutput()
	if ctx.Err() == nil {
		if err == nil {
			t.Fatalf("vesperlog exited 0 at once:\n%s", out)
		}
		t.Logf("found, as it should: vesperlog cannot start after the cut: %v\n%s", err, out)
		return
	}
	srv = startServer(t, server, dir)
	_, lost := lostReceipts(t, srv, vkey, trust, va, all)
	if len(lost) == 0 {
		t.Fatal("with keys.WriteFile not syncing, no receipt was found lost")
	}
	t.Logf("found, as it should:\n%s", strings.Join(lost, "\n"))
}
