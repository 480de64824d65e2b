package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/log/vetting/server"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// testLog is a real vetting log (Tessera POSIX) served over HTTP.
type testLog struct {
	dir   string // its POSIX directory
	url   string
	agent *ecdsa.PrivateKey
	vkey  string
	n     uint16
}

// startLog starts a vetting log signing with skey in a fresh directory;
// opts, if any, change its vlog.Options.
func startLog(t testing.TB, skey string, agent *ecdsa.PrivateKey, opts ...func(*vlog.Options)) *testLog {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	be, err := storage.Open(ctx, storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	st, err := be.Log(ctx, "vetting")
	if err != nil {
		t.Fatal(err)
	}
	o := vlog.Options{Signer: signer, Format: vlog.TlogTiles(server.Identity), Antispam: st.Antispam, CheckpointInterval: 100 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	l, err := vlog.Open(ctx, st.Driver, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	agents, _ := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: agent.Public()}, "")
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := receipts.NewSigner(rk)
	mux := http.NewServeMux()
	l.HandleReads(mux, "/vetting")
	server.New(server.Config{Log: l, Agents: func() *vetting.Agents { return agents }, Receipts: rs}).Handle(mux, "/vetting")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testLog{dir: filepath.Join(dir, "vetting"), url: srv.URL + "/vetting", agent: agent}
}

// add logs k more digests, in one batch.
func (tl *testLog) add(t testing.TB, k int) {
	t.Helper()
	pub := jose.JSONWebKey{Key: tl.agent.Public()}
	var sts []string
	for i := 0; i < k; i++ {
		tl.n++
		st, _ := vetting.NewStatement(&pub, [32]byte{byte(tl.n), byte(tl.n >> 8)}, "", uint64(time.Now().Unix()))
		s, _ := st.Sign(tl.agent)
		sts = append(sts, s)
	}
	res, err := NewVetting(tl.url, nil).AddBatch(context.Background(), sts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Entries {
		if e.Problem != nil || e.Duplicate {
			t.Fatalf("add: %+v", e)
		}
	}
}

func newKeys(t testing.TB) (string, string, *ecdsa.PrivateKey) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.test/vetting")
	agent, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return skey, vkey, agent
}

func viewOf(t testing.TB, tl *testLog, vkey string) *Log {
	p, err := policy.ForLog(vkey)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewHTTPFetcher(tl.url, HTTPOptions{Retries: 1, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &Log{Origin: "example.test/vetting", Policy: p, Fetch: f}
}

func TestGoodLog(t *testing.T) {
	ctx := context.Background()
	skey, vkey, agent := newKeys(t)
	tl := startLog(t, skey, agent)
	tl.add(t, 300)
	l := viewOf(t, tl, vkey)
	state := t.TempDir()
	old, cp, err := l.Update(ctx, state)
	if err != nil || old != nil || cp.Size != 300 {
		t.Fatalf("first update: %v %v %v", old, cp, err)
	}
	agents, _ := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: agent.Public()}, "")
	var checked int
	err = l.Audit(ctx, cp, AuditOptions{Check: func(i uint64, e []byte) error {
		leaf, err := vetting.ParseLeaf(e)
		if err != nil {
			return err
		}
		a, err := agents.Lookup(leaf.AgentKey)
		if err != nil {
			return err
		}
		checked++
		return leaf.Verify(&a.Key)
	}})
	if err != nil || checked != 300 {
		t.Fatalf("audit: %v after %d entries", err, checked)
	}
	for _, i := range []uint64{0, 255, 256, 299} {
		var e []byte
		for x, err := range l.Entries(ctx, cp, i, 1) {
			if err != nil {
				t.Fatal(err)
			}
			e = x.Data
			break
		}
		if err := l.VerifyInclusion(ctx, cp, i, rfc6962.DefaultHasher.HashLeaf(e)); err != nil {
			t.Fatal(err)
		}
		if idx, err := l.FindLeaf(ctx, cp, rfc6962.DefaultHasher.HashLeaf(e)); err != nil || idx != i {
			t.Fatalf("FindLeaf = %d, %v; want %d", idx, err, i)
		}
	}
	for _, c := range [][2]uint64{{1, 1}, {1, 300}, {100, 257}, {256, 256}, {255, 300}} {
		if _, _, _, err := l.ConsistencyBetween(ctx, cp, c[0], c[1]); err != nil {
			t.Fatalf("consistency %d to %d: %v", c[0], c[1], err)
		}
	}
	tl.add(t, 5)
	if old, cp2, err := l.Update(ctx, state); err != nil || old.Size != 300 || cp2.Size != 305 {
		t.Fatalf("second update: %v %v %v", old, cp2, err)
	}
	// A resumed audit picks up where the last stopped.
	resume := filepath.Join(t.TempDir(), "resume")
	cp300 := cp
	if err := l.Audit(ctx, cp300, AuditOptions{ResumeFile: resume}); err != nil {
		t.Fatal(err)
	}
	cp305, _, _ := l.Checkpoint(ctx)
	var seen []uint64
	if err := l.Audit(ctx, cp305, AuditOptions{ResumeFile: resume, Check: func(i uint64, _ []byte) error { seen = append(seen, i); return nil }}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5 || seen[0] != 300 {
		t.Fatalf("resumed audit checked %v", seen)
	}
}

// tamper flips a byte of the file at path (below the log's directory).
func tamper(t *testing.T, tl *testLog, path string, at int) {
	t.Helper()
	p := filepath.Join(tl.dir, path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTampering(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, path string
		at         int
		audit      string // in the audit's error
		inclusion  bool   // an inclusion proof of entry 3 fails too
	}{
		// Leaf 2's hash is in entry 3's inclusion proof.
		{"tampered tile", "tile/0/000.p/10", 2 * 32, "disagree from entry 2", true},
		// The third byte is inside entry 0.
		{"tampered entry bundle", "tile/entries/000.p/10", 10, "disagree from entry 0", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			skey, vkey, agent := newKeys(t)
			tl := startLog(t, skey, agent)
			tl.add(t, 10)
			l := viewOf(t, tl, vkey)
			cp, _, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var e3 []byte
			for x := range l.Entries(ctx, cp, 3, 1) {
				e3 = x.Data
				break
			}
			tamper(t, tl, c.path, c.at)
			if err := l.Audit(ctx, cp, AuditOptions{}); err == nil || !strings.Contains(err.Error(), c.audit) {
				t.Fatalf("audit: %v, want %q", err, c.audit)
			}
			err = l.VerifyInclusion(ctx, cp, 3, rfc6962.DefaultHasher.HashLeaf(e3))
			if (err != nil) != c.inclusion {
				t.Fatalf("inclusion of entry 3: %v", err)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	skey, vkey, agent := newKeys(t)
	tl := startLog(t, skey, agent)
	tl.add(t, 3)
	old, _ := os.ReadFile(filepath.Join(tl.dir, "checkpoint"))
	tl.add(t, 3)
	l := viewOf(t, tl, vkey)
	state := t.TempDir()
	if _, _, err := l.Update(ctx, state); err != nil {
		t.Fatal(err)
	}
	// The log serves its older checkpoint again.
	if err := os.WriteFile(filepath.Join(tl.dir, "checkpoint"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := l.Update(ctx, state)
	var ev *Evidence
	if !errors.As(err, &ev) || ev.Kind != "rollback" {
		t.Fatalf("update after a rollback: %v", err)
	}
	checkEvidence(t, ev, vkey)
	// The trusted state did not move back.
	b, _ := os.ReadFile(statePath(state, l.Origin))
	if !strings.Contains(string(b), "\n6\n") {
		t.Fatalf("trusted state changed:\n%s", b)
	}
}

// TestFork: two logs under one key, diverging. A client that trusted one
// catches the other.
func TestFork(t *testing.T) {
	ctx := context.Background()
	skey, vkey, agent := newKeys(t)
	a := startLog(t, skey, agent)
	b := startLog(t, skey, agent)
	a.add(t, 4)
	b.n = 100 // other entries
	b.add(t, 4)
	state := t.TempDir()
	if _, _, err := viewOf(t, a, vkey).Update(ctx, state); err != nil {
		t.Fatal(err)
	}
	_, _, err := viewOf(t, b, vkey).Update(ctx, state)
	var ev *Evidence
	if !errors.As(err, &ev) || ev.Kind != "fork" {
		t.Fatalf("same size, other root: %v", err)
	}
	checkEvidence(t, ev, vkey)

	b.add(t, 3)
	_, _, err = viewOf(t, b, vkey).Update(ctx, state)
	if !errors.As(err, &ev) || ev.Kind != "inconsistent" || len(ev.Proof) == 0 {
		t.Fatalf("larger, inconsistent: %v", err)
	}
	checkEvidence(t, ev, vkey)

	// A witness's view of log a, compared with log b: a split view.
	wcp, _ := os.ReadFile(filepath.Join(a.dir, "checkpoint"))
	_, _, err = viewOf(t, b, vkey).CompareWith(ctx, wcp, "witness.test/w1")
	if !errors.As(err, &ev) || ev.Kind != "split-view" {
		t.Fatalf("split view: %v", err)
	}
	checkEvidence(t, ev, vkey)
	if _, _, err := viewOf(t, a, vkey).CompareWith(ctx, wcp, "witness.test/w1"); err != nil {
		t.Fatalf("the same view: %v", err)
	}
}

func checkEvidence(t *testing.T, ev *Evidence, vkey string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evidence.json")
	if err := ev.Write(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	got, conclusive, err := CheckEvidence(b, vkey)
	if err != nil || got.Kind != ev.Kind {
		t.Fatalf("a third party cannot check the %s evidence: %v", ev.Kind, err)
	}
	if want := ev.Kind == "fork"; conclusive != want {
		t.Fatalf("%s evidence conclusive = %v", ev.Kind, conclusive)
	}
	// Evidence whose checkpoint was altered no longer checks.
	bad := strings.Replace(string(b), `\n`, `\n\n`, 1)
	if _, _, err := CheckEvidence([]byte(bad), vkey); err == nil {
		t.Fatal("altered evidence checks")
	}
}

func TestWitnessQuorumMissing(t *testing.T) {
	skey, vkey, agent := newKeys(t)
	tl := startLog(t, skey, agent)
	tl.add(t, 1)
	_, wv, _ := note.GenerateKey(rand.Reader, "witness.test/w1")
	cv, _ := fnote.VKeyToCosignatureV1(wv)
	p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s\nquorum w1\n", vkey, cv)))
	if err != nil {
		t.Fatal(err)
	}
	l := viewOf(t, tl, vkey)
	l.Policy = p
	_, _, err = l.Checkpoint(context.Background())
	if !errors.Is(err, policy.ErrQuorum) || !strings.Contains(err.Error(), "w1") {
		t.Fatalf("checkpoint without the quorum: %v", err)
	}
}

var writeExample = flag.Bool("write-example-log", false, "rewrite testdata/example-log")

// TestWriteExampleLog makes the log the examples read: 20 entries written
// by Tessera's POSIX driver, copied with its tiles, bundles and checkpoint.
func TestWriteExampleLog(t *testing.T) {
	if !*writeExample {
		t.Skip("run with -write-example-log to regenerate testdata/example-log")
	}
	skey, vkey, agent := newKeys(t)
	tl := startLog(t, skey, agent)
	tl.add(t, 20)
	os.RemoveAll("testdata/example-log")
	if err := os.MkdirAll("testdata/example-log", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"checkpoint", "tile"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(tl.dir, sub), "testdata/example-log/"+sub).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	os.WriteFile("testdata/example-log.vkey", []byte(vkey+"\n"), 0o644)
}

func FuzzCheckEvidence(f *testing.F) {
	vkey, err := os.ReadFile("testdata/example-log.vkey")
	if err != nil {
		f.Fatal(err)
	}
	cp, _ := os.ReadFile("testdata/example-log/checkpoint")
	for _, kind := range []string{"fork", "rollback", "inconsistent", "split-view"} {
		b, _ := json.Marshal(Evidence{Kind: kind, Origin: "example.test/vetting", Trusted: string(cp), Offered: string(cp)})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, conclusive, err := CheckEvidence(b, strings.TrimSpace(string(vkey)))
		if err != nil || !conclusive {
			return
		}
		// The example log is honest and signed one checkpoint: no
		// conclusive evidence against it can exist.
		t.Fatalf("conclusive evidence against an honest log: %+v", ev)
	})
}
