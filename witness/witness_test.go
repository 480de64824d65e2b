package witness

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// testLog is a log built with golang.org/x/mod/sumdb/tlog and signed with
// x/mod/sumdb/note: a log vesperwitness did not write.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	hashes []tlog.Hash
	n      int64
}

func newTestLog(t testing.TB, origin string) *testLog {
	skey, vkey, _ := note.GenerateKey(rand.Reader, origin)
	s, _ := note.NewSigner(skey)
	return &testLog{origin: origin, signer: s, vkey: vkey}
}

func (l *testLog) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *testLog) grow(t testing.TB, k int) {
	for i := 0; i < k; i++ {
		hs, err := tlog.StoredHashes(l.n, []byte(fmt.Sprintf("%s entry %d", l.origin, l.n)), tlog.HashReaderFunc(l.read))
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.n++
	}
}

func (l *testLog) root(t testing.TB, n int64) tlog.Hash {
	if n == 0 {
		return tlog.Hash(sha256.Sum256(nil))
	}
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (l *testLog) checkpoint(t testing.TB, n int64, root tlog.Hash, signers ...note.Signer) []byte {
	if signers == nil {
		signers = []note.Signer{l.signer}
	}
	b, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *testLog) proof(t testing.TB, old, n int64) []string {
	p, err := tlog.ProveTree(n, old, tlog.HashReaderFunc(l.read))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range p {
		out = append(out, base64.StdEncoding.EncodeToString(h[:]))
	}
	return out
}

func body(old int64, proof []string, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, p := range proof {
		b.WriteString(p + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// newWitness opens a witness with a new key of alg (Ed25519 or MLDSA44)
// and returns it with the policy a verifier of its cosignatures holds.
func newWitness(t testing.TB, dir, alg string, logs ...*testLog) (*Witness, *policy.Policy) {
	t.Helper()
	skey, _, err := GenerateKey("witness.test/w1", alg)
	if err != nil {
		t.Fatal(err)
	}
	return openWitness(t, dir, skey, logs...)
}

func openWitness(t testing.TB, dir, skey string, logs ...*testLog) (*Witness, *policy.Policy) {
	t.Helper()
	k, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	var pol strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&pol, "log %s\n", l.vkey)
	}
	p, err := policy.Parse([]byte(pol.String() + "quorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(k.Signer, p, dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&pol, "witness w1 %s\nquorum w1\n", k.VKey)
	verifier, err := policy.Parse([]byte(pol.String()))
	if err != nil {
		t.Fatal(err)
	}
	return w, verifier
}

// TestAddCheckpoint quotes the spec's add-checkpoint cases, in order, on
// one witness whose state each row builds on, once with an Ed25519 key and
// once with an ML-DSA-44 key.
func TestAddCheckpoint(t *testing.T) {
	for _, alg := range []string{Ed25519, MLDSA44} {
		t.Run(alg, func(t *testing.T) { testAddCheckpoint(t, alg) })
	}
}

func testAddCheckpoint(t *testing.T, alg string) {
	l := newTestLog(t, "example.test/log")
	other := newTestLog(t, "example.test/unknown")
	w, verifier := newWitness(t, t.TempDir(), alg, l)
	wv := verifier.Witnesses()[0].Verifier
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	l.grow(t, 10)
	forger := newTestLog(t, "example.test/log") // same origin, another key

	post := func(b []byte) (int, string, string) {
		resp, err := http.Post(srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(out)
	}
	cp := func(n int64) []byte { return l.checkpoint(t, n, l.root(t, n)) }
	badSig := bytes.Replace(cp(10), []byte("\n— example.test/log "), []byte("\n— example.test/log AAAA"), 1)

	for _, c := range []struct {
		name   string
		body   []byte
		status int
		want   string // in the body
	}{
		{"unknown origin: 404", body(0, nil, other.checkpoint(t, 0, other.root(t, 0))), 404, ""},
		{"no signature from a trusted key: 403", body(0, nil, forger.checkpoint(t, 0, tlog.Hash(sha256.Sum256(nil)))), 403, ""},
		{"a trusted key's signature fails to verify: 403", body(0, nil, badSig), 403, ""},
		{"old size larger than the checkpoint: 400", body(11, nil, cp(10)), 400, ""},
		{"old size with a leading zero: 400", []byte("old 00\n\n" + string(cp(10))), 400, ""},
		{"no empty line: 400", []byte("old 0\n" + string(cp(10))), 400, ""},
		{"a proof line that is not a hash: 400", body(0, []string{"AAAA"}, cp(10)), 400, ""},
		{"first contact with old != 0: 409 with size 0", body(5, l.proof(t, 5, 10), cp(10)), 409, "0\n"},
		{"size 0 with the wrong root: 422", body(0, nil, l.checkpoint(t, 0, l.root(t, 5))), 422, ""},
		{"non-empty proof with old 0: 422", body(0, l.proof(t, 5, 10), cp(10)), 422, ""},
		{"first checkpoint: 200", body(0, nil, cp(5)), 200, "— witness.test/w1 "},
		{"old is not the cosigned size: 409", body(3, l.proof(t, 3, 10), cp(10)), 409, "5\n"},
		{"bad consistency proof: 422", body(5, l.proof(t, 4, 10), cp(10)), 422, ""},
		{"consistent growth: 200", body(5, l.proof(t, 5, 10), cp(10)), 200, "— witness.test/w1 "},
		{"same size, same root: 200", body(10, nil, cp(10)), 200, "— witness.test/w1 "},
		{"same size, another root: 422", body(10, nil, l.checkpoint(t, 10, l.root(t, 9))), 422, ""},
		{"a rollback: 409", body(5, nil, cp(5)), 409, "10\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ctype, out := post(c.body)
			if status != c.status || !strings.Contains(out, c.want) {
				t.Fatalf("%d %q, want %d containing %q", status, out, c.status, c.want)
			}
			switch status {
			case 409:
				if ctype != "text/x.tlog.size" {
					t.Errorf("409 Content-Type %q", ctype)
				}
			case 200:
				// The answer is one cosignature line that verifies on the
				// checkpoint under a policy that needs this witness, with
				// the time of signing.
				signed := append(append([]byte(nil), c.body[bytes.Index(c.body, []byte("\n\n"))+2:]...), out...)
				cp, err := verifier.Verify(signed)
				if err != nil || len(cp.Cosigners) != 1 || strings.Count(out, "\n") != 1 {
					t.Fatalf("cosignature does not verify: %v\n%s", err, out)
				}
				for _, sig := range cp.Note.Sigs {
					if sig.Name != wv.Name() {
						continue
					}
					ts, err := fnote.CoSigV1Timestamp(sig)
					if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
						t.Fatalf("cosignature timestamp %v, %v", ts, err)
					}
				}
			default:
				if ctype != "application/problem+json" {
					t.Errorf("Content-Type %q", ctype)
				}
			}
		})
	}

	// The monitoring read serves the latest, with the log's signature and ours.
	h := sha256.Sum256([]byte(l.origin))
	resp, err := http.Get(srv.URL + "/" + hex.EncodeToString(h[:]) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lv, _ := note.NewVerifier(l.vkey)
	n, err := note.Open(got, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(n.Text, l.origin+"\n10\n") {
		t.Fatalf("monitoring read: %v\n%s", err, got)
	}
	oh := sha256.Sum256([]byte(other.origin))
	if resp, _ := http.Get(srv.URL + "/" + hex.EncodeToString(oh[:]) + "/checkpoint"); resp.StatusCode != 404 {
		t.Fatalf("monitoring read of an unknown log: %d", resp.StatusCode)
	}
}

// TestRestart: the cosigned state survives the process.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, "example.test/log")
	l.grow(t, 7)
	skey, _, _ := note.GenerateKey(rand.Reader, "witness.test/w1") // as earlier keygens wrote
	w, _ := openWitness(t, dir, skey, l)
	if _, err := w.AddCheckpoint(body(0, nil, l.checkpoint(t, 7, l.root(t, 7)))); err != nil {
		t.Fatal(err)
	}
	if _, err := New(w.signer, w.logs, dir); err == nil {
		t.Fatal("a second witness opened the same state")
	}
	// A new process: simulate by releasing the lock through a fresh dir handle.
	w2 := &Witness{signer: w.signer, logs: w.logs, dir: dir, locks: map[string]*sync.Mutex{}}
	_, err := w2.AddCheckpoint(body(0, nil, l.checkpoint(t, 7, l.root(t, 7))))
	if c, ok := err.(*ConflictError); !ok || c.Size != 7 {
		t.Fatalf("after restart: %v, want a conflict at 7", err)
	}
}

// TestConcurrentUpdates races many clients on one log: every answer is
// consistent, and the stored size never goes back.
func TestConcurrentUpdates(t *testing.T) {
	l := newTestLog(t, "example.test/log")
	w, _ := newWitness(t, t.TempDir(), Ed25519, l)
	l.grow(t, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	okSizes := map[int64]bool{}
	for n := int64(1); n <= 64; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := l.checkpoint(t, n, l.root(t, n))
			// Each client retries from the size the witness reports, as a log does.
			old := int64(0)
			for try := 0; try < 100; try++ {
				var proof []string
				if old > 0 && old < n {
					proof = l.proof(t, old, n)
				}
				_, err := w.AddCheckpoint(body(old, proof, cp))
				if err == nil {
					mu.Lock()
					okSizes[n] = true
					mu.Unlock()
					return
				}
				c, ok := err.(*ConflictError)
				if !ok || int64(c.Size) > n {
					return // the witness moved past n: n can no longer be cosigned
				}
				old = int64(c.Size)
			}
			t.Errorf("size %d: no progress", n)
		}()
	}
	wg.Wait()
	latest, err := w.latest(l.origin)
	if err != nil || latest.Size != 64 && !okSizes[int64(latest.Size)] {
		t.Fatalf("latest %+v, %v", latest, err)
	}
	// Whatever was cosigned last is the largest size cosigned.
	var max int64
	for n := range okSizes {
		max = maxInt(max, n)
	}
	if int64(latest.Size) != max {
		t.Fatalf("stored size %d, but %d was cosigned: a rollback", latest.Size, max)
	}
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
