package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// loadBinaries builds vesperload and Tessera v1.0.4's POSIX conformance
// server (the bare log vesperload compares vesperlog with).
func loadBinaries(t *testing.T) (vesperload, bare string) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/vesperlog/vesperlog/cmd/vesperload",
		"github.com/transparency-dev/tessera/cmd/conformance/posix").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "vesperload"), filepath.Join(dir, "posix")
}

// loadReport is the part of vesperload -json the test reads.
type loadReport struct {
	Requests         int            `json:"requests"`
	Dropped          int            `json:"dropped"`
	Entries          int            `json:"entries"`
	EntriesOK        int            `json:"entries_ok"`
	Statuses         map[string]int `json:"statuses"`
	ReceiptsVerified int            `json:"receipts_verified"`
	ReceiptsFailed   int            `json:"receipts_failed"`
	Uncovered        int            `json:"uncovered"`
	Latency          struct {
		Count uint64  `json:"count"`
		P50   float64 `json:"p50_ms"`
		P99   float64 `json:"p99_ms"`
		Max   float64 `json:"max_ms"`
	} `json:"latency"`
	AddLatency *struct {
		Count uint64 `json:"count"`
	} `json:"add_latency"`
	RefusedLatency *struct {
		Count uint64  `json:"count"`
		P50   float64 `json:"p50_ms"`
		P99   float64 `json:"p99_ms"`
	} `json:"refused_latency"`
	RefusedWithoutRetryAfter int     `json:"refused_without_retry_after"`
	ServerCPUSeconds         float64 `json:"server_cpu_seconds"`
	ServerRSSBytes           uint64  `json:"server_rss_bytes"`
	ServerRSSAnonBytes       uint64  `json:"server_rss_anon_bytes"`
}

// runLoad runs vesperload -json with args and decodes its report; it fails
// the test unless vesperload exits 0.
func runLoad(t *testing.T, bin, dir string, args ...string) loadReport {
	t.Helper()
	cmd := exec.Command(bin, append(args, "-json")...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vesperload %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var r loadReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("vesperload %s: not a JSON report: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
	if r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
		t.Errorf("vesperload %s: quantiles out of order: %+v", strings.Join(args, " "), r.Latency)
	}
	return r
}

// TestLoad runs the real vesperload, briefly, against a real vesperlog in
// open and closed loop, single and batch, verifying every receipt; then in
// raw mode against bare Tessera. It checks the tool works, not how fast the
// server is (issue 15; the timed runs are in the README's Performance).
func TestLoad(t *testing.T) {
	server, cli := binaries(t)
	load, bare := loadBinaries(t)

	t.Run("vesperlog", func(t *testing.T) {
		dir := t.TempDir()
		srv := startServer(t, server, dir)
		newAgent(t, cli, dir)
		waitAgents(t, srv.url, "va")
		pid := strconv.Itoa(srv.cmd.Process.Pid)
		total := 0
		for _, c := range []struct {
			name    string
			args    []string
			entries int // exactly, or 0 for some
		}{
			{"open single", []string{"-rate", "40", "-duration", "2s", "-max-inflight", "200"}, 80},
			{"open batch", []string{"-rate", "4", "-duration", "2s", "-batch", "25", "-max-inflight", "50"}, 200},
			{"closed single", []string{"-concurrency", "4", "-duration", "2s", "-pool", "3000"}, 0},
			{"closed batch", []string{"-concurrency", "2", "-count", "6", "-batch", "50"}, 300},
		} {
			args := append([]string{"-target", srv.url, "-key", "va.jwk", "-verify", "1", "-pid", pid}, c.args...)
			r := runLoad(t, load, dir, args...)
			if r.EntriesOK == 0 || r.EntriesOK != r.Entries || r.Statuses["200"] != r.Entries || len(r.Statuses) != 1 {
				t.Errorf("%s: %d of %d entries logged, answers %v", c.name, r.EntriesOK, r.Entries, r.Statuses)
			}
			if c.entries != 0 && (r.Entries != c.entries || r.Dropped != 0) {
				t.Errorf("%s: %d entries sent, %d requests dropped; want %d, 0", c.name, r.Entries, r.Dropped, c.entries)
			}
			if r.ReceiptsVerified != r.EntriesOK || r.ReceiptsFailed != 0 {
				t.Errorf("%s: %d receipts verified, %d failed, of %d", c.name, r.ReceiptsVerified, r.ReceiptsFailed, r.EntriesOK)
			}
			if r.Latency.Count != uint64(r.Requests) || r.ServerCPUSeconds <= 0 || r.ServerRSSBytes == 0 || r.ServerRSSAnonBytes == 0 || r.ServerRSSAnonBytes > r.ServerRSSBytes {
				t.Errorf("%s: %d latencies of %d requests, server CPU %g s, RSS %d (anonymous %d)", c.name, r.Latency.Count, r.Requests, r.ServerCPUSeconds, r.ServerRSSBytes, r.ServerRSSAnonBytes)
			}
			total += r.EntriesOK
		}
		// The log holds what vesperload says it logged, no more.
		size := strings.Split(string(httpGet200(t, srv.url+"/vetting/checkpoint")), "\n")[1]
		if size != strconv.Itoa(total) {
			t.Errorf("the log's checkpoint has size %s; vesperload logged %d", size, total)
		}

		// Refusals are counted by status and problem type, and log nothing.
		runVesper(t, cli, dir, 0, "keygen", "agent", "-out", "stranger.jwk")
		r := runLoad(t, load, dir, "-target", srv.url, "-key", "stranger.jwk", "-concurrency", "2", "-count", "4", "-batch", "3")
		if r.Entries != 12 || r.EntriesOK != 0 || r.ReceiptsVerified != 0 || len(r.Statuses) != 1 {
			t.Errorf("unregistered agent: %d of %d logged, answers %v", r.EntriesOK, r.Entries, r.Statuses)
		}
		for status := range r.Statuses {
			if !strings.HasPrefix(status, "200, item 403 ") && !strings.HasPrefix(status, "403 ") {
				t.Errorf("unregistered agent: answers %v; want 403 with a problem type", r.Statuses)
			}
		}
		if again := strings.Split(string(httpGet200(t, srv.url+"/vetting/checkpoint")), "\n")[1]; again != size {
			t.Errorf("refused statements grew the log from %s to %s", size, again)
		}
	})

	// -ct against the STI-CT log: certificates issued under the test PKI
	// the log trusts, each answered with an SCT; one issued under another
	// root is refused, and counted with the log's problem title.
	t.Run("stict", func(t *testing.T) {
		dir := t.TempDir()
		stictPKI(t, dir)
		srv, _ := startSTICT(t, server, dir)
		target := srv.url + "/stict"
		r := runLoad(t, load, dir, "-ct", "-pki", "pki", "-target", target, "-rate", "50", "-duration", "2s",
			"-max-inflight", "200", "-pid", strconv.Itoa(srv.cmd.Process.Pid))
		if r.Entries != 100 || r.EntriesOK != 100 || r.Statuses["200"] != 100 || r.Dropped != 0 {
			t.Errorf("ct: %d of %d chains logged, %d dropped, answers %v; want 100 of 100, 0", r.EntriesOK, r.Entries, r.Dropped, r.Statuses)
		}
		if r.Latency.Count != 100 || r.ServerCPUSeconds <= 0 || r.ReceiptsVerified != 0 {
			t.Errorf("ct: %d latencies, server CPU %g s, %d receipts verified; want 100, > 0, 0 (SCTs are not receipts)", r.Latency.Count, r.ServerCPUSeconds, r.ReceiptsVerified)
		}
		size := strings.Split(string(httpGet200(t, target+"/checkpoint")), "\n")[1]
		if size != "100" {
			t.Errorf("the STI-CT log's checkpoint has size %s; want 100", size)
		}

		// Another test PKI, whose root the log does not trust.
		other := t.TempDir()
		stictPKI(t, other)
		r = runLoad(t, load, dir, "-ct", "-pki", filepath.Join(other, "pki"), "-target", target, "-concurrency", "2", "-count", "4")
		if r.Entries != 4 || r.EntriesOK != 0 || len(r.Statuses) != 1 {
			t.Errorf("ct, untrusted: %d of %d logged, answers %v; want 0 of 4, one kind of refusal", r.EntriesOK, r.Entries, r.Statuses)
		}
		for status := range r.Statuses {
			if !strings.HasPrefix(status, "400 ") {
				t.Errorf("ct, untrusted: answers %v; want 400 with the problem's title", r.Statuses)
			}
		}
	})

	t.Run("tessera", func(t *testing.T) {
		dir := t.TempDir()
		skey, _, err := note.GenerateKey(rand.Reader, "bare.test/log")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "log.key"), []byte(skey), 0o600)
		cmd := exec.Command(bare, "-storage_dir", "storage", "-listen", "127.0.0.1:0", "-private_key", "log.key", "-antispam")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stopProcess(t, cmd)
			if t.Failed() {
				t.Logf("posix stderr:\n%s", stderr.String())
			}
		})
		target := "http://" + listeningAddr(t, cmd.Process.Pid)
		eventually(t, 10*time.Second, "a checkpoint at "+target, func() (bool, string) {
			resp, b := httpDo(t, "GET", target+"/checkpoint", "", nil)
			return resp.StatusCode == 200, string(b)
		})
		r := runLoad(t, load, dir, "-raw", "-target", target, "-rate", "100", "-duration", "2s", "-poll", "20ms", "-pid", strconv.Itoa(cmd.Process.Pid))
		if r.Entries != 200 || r.EntriesOK != 200 || r.Dropped != 0 || r.Uncovered != 0 {
			t.Errorf("raw: %d of %d entries added, %d dropped, %d uncovered; want 200, 200, 0, 0", r.EntriesOK, r.Entries, r.Dropped, r.Uncovered)
		}
		if r.Latency.Count != 200 || r.AddLatency == nil || r.AddLatency.Count != 200 || r.ServerCPUSeconds <= 0 {
			t.Errorf("raw: %d latencies to the checkpoint, add latencies %+v, server CPU %g s; want 200, 200, > 0", r.Latency.Count, r.AddLatency, r.ServerCPUSeconds)
		}
		size := strings.Split(string(httpGet200(t, target+"/checkpoint")), "\n")[1]
		if size != "200" {
			t.Errorf("bare Tessera's checkpoint has size %s; want 200", size)
		}
	})
}

// listeningAddr finds the address a process (started with a listen
// address of port 0, which it does not print) listens on, from its
// sockets' inodes and /proc/net/tcp.
func listeningAddr(t *testing.T, pid int) string {
	t.Helper()
	for range 100 {
		inodes := map[string]bool{}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if in, ok := strings.CutPrefix(link, "socket:["); ok {
				inodes[strings.TrimSuffix(in, "]")] = true
			}
		}
		tcp, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(tcp), "\n")[1:] {
			// sl local_address rem_address st ... inode (field 10)
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] {
				_, portHex, _ := strings.Cut(f[1], ":")
				port, err := strconv.ParseUint(portHex, 16, 16)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("127.0.0.1:%d", port)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %d listens on no TCP port", pid)
	return ""
}
