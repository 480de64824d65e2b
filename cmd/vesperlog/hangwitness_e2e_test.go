package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/client"
)

// hangingWitness is a witness that accepts connections, reads what it is
// sent, and never answers. It counts the connections it holds open.
type hangingWitness struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and one reader per connection

	mu    sync.Mutex // guards conns and total
	conns map[net.Conn]bool
	total int
}

func startHangingWitness(t *testing.T) *hangingWitness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingWitness{ln: ln, conns: map[net.Conn]bool{}}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			h.mu.Lock()
			h.conns[c] = true
			h.total++
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				_, _ = io.Copy(io.Discard, c) // until the client gives up
				c.Close()
				h.mu.Lock()
				delete(h.conns, c)
				h.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

// held returns the connections open now and accepted in all.
func (h *hangingWitness) held() (open, total int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns), h.total
}

// TestHangingWitness: a witness that accepts connections and never
// answers stalls neither reads nor, where the policy lets them through,
// writes, and costs the server no more goroutines, file descriptors or
// connections as checkpoints go by: Tessera gives each witness request
// its WitnessOptions timeout (5 s by default) and cancels it once the
// quorum is met. Two policies: "quorum", where a working vesperwitness
// meets the quorum alone (writes succeed); "required", where the hanging
// witness is needed (writes answer 503 within -publish-timeout, naming it).
func TestHangingWitness(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	for _, c := range []struct {
		name      string
		threshold string
		writesOK  bool
	}{{"quorum", "1", true}, {"required", "all", false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testHangingWitness(t, server, cli, wbin, c.threshold, c.writesOK)
		})
	}
}

// hangLoad is how long the hanging witness test submits.
const hangLoad = 15 * time.Second

func testHangingWitness(t *testing.T, server, cli, wbin, threshold string, writesOK bool) {
	dir := t.TempDir()
	first := startServer(t, server, dir)
	vkey := first.vkey
	first.stop(t)
	// w1, a real vesperwitness, and "hang", which never answers.
	startWitnesses(t, wbin, dir, vkey, "ed25519")
	pol, err := os.ReadFile(filepath.Join(dir, "witnesses.policy"))
	if err != nil {
		t.Fatal(err)
	}
	w1 := regexp.MustCompile(`(?m)^witness w1 .*$`).Find(pol)
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/hang", "-out", filepath.Join(dir, "hang.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	hangVKey := regexp.MustCompile(`vkey: (\S+)`).FindSubmatch(out)[1]
	hang := startHangingWitness(t)
	policyText := fmt.Sprintf("%s\nwitness hang %s http://%s\ngroup g %s w1 hang\nquorum g\n", w1, hangVKey, hang.ln.Addr(), threshold)
	if err := os.WriteFile(filepath.Join(dir, "hang.policy"), []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	// Short where every write times out; roomy where none should.
	publishTimeout := 3 * time.Second
	if writesOK {
		publishTimeout = 10 * time.Second
	}
	srv := startServer(t, server, dir, "-witness-policy", "hang.policy", "-publish-timeout", publishTimeout.String())
	newAgent(t, cli, dir)
	waitAgents(t, srv.url, "va")
	agent := loadAgent(t, filepath.Join(dir, "va.jwk"))
	cs := &crashState{t: t, agents: []crashAgent{agent}}

	// Submitters and readers, for hangLoad.
	ctx, stop := context.WithTimeout(context.Background(), hangLoad)
	defer stop()
	hc := &http.Client{Timeout: 30 * time.Second}
	vc := client.NewVetting(srv.url+"/vetting", hc)
	var (
		mu                        sync.Mutex // guards the counts and times below
		added, refused            int
		slowestWrite, slowestRead time.Duration
		readCount, readFail       int
	)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				s := crashStatement{agent: 0, digest: [32]byte{byte(g), byte(i >> 8), byte(i), 0xaa}}
				st, err := cs.sign(s)
				if err != nil {
					t.Error(err)
					return
				}
				start := time.Now()
				_, err = vc.Add(context.Background(), st)
				d := time.Since(start)
				var api *client.APIError
				mu.Lock()
				slowestWrite = max(slowestWrite, d)
				switch {
				case err == nil:
					added++
				case errors.As(err, &api) && api.Status == http.StatusServiceUnavailable:
					refused++
					if !strings.Contains(err.Error(), "witness hang") {
						t.Errorf("a 503 that does not name the hanging witness: %v", err)
					}
				default:
					t.Errorf("submission: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rc := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			for _, path := range []string{"/vetting/checkpoint", "/vetting/v1/agents", "/vetting/tile/0/000.p/1"} {
				start := time.Now()
				resp, err := rc.Get(srv.url + path)
				d := time.Since(start)
				ok := err == nil && (resp.StatusCode == http.StatusOK || path == "/vetting/tile/0/000.p/1" && resp.StatusCode == http.StatusNotFound)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				readCount++
				slowestRead = max(slowestRead, d)
				if !ok {
					readFail++
				}
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// Sample the server's goroutines, fds and the connections it holds
	// open to the hanging witness, each second.
	type sample struct{ goroutines, fds, open int }
	var samples []sample
	pid := srv.cmd.Process.Pid
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		g := goroutines(t, srv.url)
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		open, _ := hang.held()
		samples = append(samples, sample{g, len(fds), open})
	}
	wg.Wait()
	_, total := hang.held()
	t.Logf("%s: %d added, %d refused (slowest write %s), %d reads (%d failed, slowest %s); the hanging witness was asked %d times; "+
		"samples (goroutines, fds, held connections) %v",
		map[bool]string{true: "quorum", false: "required"}[writesOK], added, refused, slowestWrite.Round(time.Millisecond), readCount, readFail, slowestRead.Round(time.Millisecond), total, samples)

	if readFail > 0 || slowestRead > 2*time.Second {
		t.Errorf("reads stalled: %d failed, slowest %s", readFail, slowestRead)
	}
	if writesOK && (added == 0 || refused > 0) {
		t.Errorf("writes with a quorum met without the hanging witness: %d added, %d refused", added, refused)
	}
	if !writesOK && (added > 0 || refused == 0) {
		t.Errorf("writes needing the hanging witness: %d added, %d refused", added, refused)
	}
	if slowestWrite > publishTimeout+5*time.Second {
		t.Errorf("a write took %s, -publish-timeout is %s", slowestWrite, publishTimeout)
	}
	if total < 2 {
		t.Errorf("the hanging witness was asked %d times: the test did not exercise it", total)
	}
	// Bounded, not growing with each checkpoint: a leak of one goroutine
	// or connection per witness request would add dozens over hangLoad.
	// From the third second on (the load has started), the server holds
	// at most two connections to the hanging witness, and its goroutines
	// and fds stay within a margin of where they were.
	base := samples[2]
	for _, s := range samples[2:] {
		if s.open > 2 {
			t.Errorf("the server holds %d connections open to the hanging witness", s.open)
		}
		if s.goroutines > base.goroutines+20 || s.fds > base.fds+10 {
			t.Errorf("goroutines or fds grew from %+v to %+v: %v", base, s, samples)
			break
		}
	}
	if writesOK {
		srv.stop(t)
	} // else a stop waits 30 s for its unwitnessed entries to be published, then exits 1: the cleanup kills it
}

// goroutines reads the server's go_goroutines gauge from its /metrics.
func goroutines(t *testing.T, url string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go_goroutines (\S+)$`).FindStringSubmatch(scrape(t, url))
	if m == nil {
		t.Fatal("no go_goroutines in /metrics")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}
