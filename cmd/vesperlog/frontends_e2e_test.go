package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-sql-driver/mysql"
	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"

	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
)

// Several vesperlog processes (front ends) serving one log on one aws
// backend: concurrent submissions, dedup across front ends, receipts that
// verify under any front end's trust document, the shared agent registry,
// and a front end killed under load.

// frontEnd is one vesperlog process of a shared backend, in its directory.
type frontEnd struct {
	name string
	dir  string
	srv  *running
}

// startFrontEnds starts n front ends on be, with the given server
// arguments, each in a directory that prepare (if set) fills first. The
// first creates the logs' keys; each other gets a copy of them (all but the
// receipt key, so that each front end signs receipts with its own key,
// published in the shared receipt key history).
func startFrontEnds(t *testing.T, be *backend, server string, n int, prepare func(dir string), args ...string) []*frontEnd {
	t.Helper()
	var fes []*frontEnd
	for i := range n {
		fe := &frontEnd{name: fmt.Sprintf("fe%d", i), dir: t.TempDir()}
		if prepare != nil {
			prepare(fe.dir)
		}
		if i > 0 {
			copyLogKeys(t, fes[0].dir, fe.dir)
		}
		fe.srv = be.start(t, server, fe.dir, args...)
		if i > 0 && fe.srv.vkey != fes[0].srv.vkey {
			t.Fatalf("%s serves %s, %s serves %s", fe.name, fe.srv.vkey, fes[0].name, fes[0].srv.vkey)
		}
		fes = append(fes, fe)
	}
	// Every front end publishes every front end's receipt key within a
	// second (state.ReloadEvery).
	for _, fe := range fes {
		eventually(t, 10*time.Second, fe.name+"'s JWKS listing every front end's receipt key", func() (bool, string) {
			resp, err := http.Get(fe.srv.url + "/.well-known/jwks.json")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			var set jose.JSONWebKeySet
			if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
				return false, err.Error()
			}
			return len(set.Keys) == n, fmt.Sprintf("%d keys", len(set.Keys))
		})
	}
	return fes
}

// copyLogKeys copies the key files of the logs from one data directory to
// another's, leaving out the receipt key.
func copyLogKeys(t *testing.T, from, to string) {
	t.Helper()
	src := filepath.Join(from, "data", "keys")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(to, "data", "keys")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "receipt") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// agentKey is a vetting agent's key, made by vesper keygen, with which the
// test signs statements itself (a vesper process per statement would cost
// more than the log).
type agentKey struct {
	name   string
	signer crypto.Signer
	pub    jose.JSONWebKey
}

func newAgentKey(t *testing.T, cli, dir, name string) *agentKey {
	t.Helper()
	runVesper(t, cli, dir, 0, "keygen", "agent", "-out", name+".jwk")
	b, err := os.ReadFile(filepath.Join(dir, name+".jwk"))
	if err != nil {
		t.Fatal(err)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	s, ok := k.Key.(crypto.Signer)
	if !ok {
		t.Fatalf("%s.jwk is not a private key", name)
	}
	return &agentKey{name: name, signer: s, pub: k.Public()}
}

// statement is the agent's signed statement about the digest of label.
// It panics where vetting refuses the key, which newAgentKey made: it is
// called from the submitting goroutines, which may not t.Fatal.
func (a *agentKey) statement(label string) (string, [32]byte) {
	d := sha256.Sum256([]byte(label))
	st, err := vetting.NewStatement(&a.pub, d, "", uint64(time.Now().Unix()))
	if err != nil {
		panic(err)
	}
	jws, err := st.Sign(a.signer)
	if err != nil {
		panic(err)
	}
	return jws, d
}

// submission is one POST /vetting/v1/add and its outcome.
type submission struct {
	fe         int // the front end it went to
	label      string
	digest     [32]byte
	jws        string
	start, end time.Time
	status     int // 0: no HTTP answer
	res        vetting.AddResponse
	err        error // no answer, or not 200
}

func (s *submission) ok() bool { return s.err == nil }

// loadClient is shared by the submitting goroutines.
var loadClient = &http.Client{
	Timeout:   90 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32},
}

// submit posts a statement to the vetting log at url.
func submit(url string, fe int, label, jws string, digest [32]byte) *submission {
	s := &submission{fe: fe, label: label, digest: digest, jws: jws, start: time.Now()}
	defer func() { s.end = time.Now() }()
	resp, err := loadClient.Post(url+"/vetting/v1/add", "application/jose", strings.NewReader(jws))
	if err != nil {
		s.err = err
		return s
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	s.status = resp.StatusCode
	switch {
	case err != nil:
		s.err = err
	case resp.StatusCode != 200:
		s.err = fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
	default:
		if err := json.Unmarshal(body, &s.res); err != nil || s.res.Receipt == "" {
			s.err = fmt.Errorf("answer %q: %v", body, err)
		}
	}
	return s
}

// trustOf returns what a verifier pins from the front end at url.
func trustOf(t *testing.T, url string) receipts.Trust {
	t.Helper()
	c, err := receipts.ParseConfiguration(httpGet200(t, url+"/.well-known/transparency-configuration"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.Trust()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// verifyReceipt checks a receipt offline under trust and that its entry is
// the agent's statement about digest, at the index the log answered.
func verifyReceipt(trust receipts.Trust, receipt string, index uint64, agent *agentKey, digest [32]byte) (*receipts.Verified, error) {
	v, err := receipts.Verify(receipt, trust)
	if err != nil {
		return nil, err
	}
	if v.Index != index {
		return nil, fmt.Errorf("receipt for entry %d, the answer said %d", v.Index, index)
	}
	leaf, err := vetting.ParseLeaf(v.Entry)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %v", v.Index, err)
	}
	tp, err := vetting.Thumbprint(&agent.pub)
	if err != nil {
		return nil, err
	}
	if leaf.AgentKey != tp || leaf.Digest != digest {
		return nil, fmt.Errorf("entry %d is agent %x's digest %x, not %s's %x", v.Index, leaf.AgentKey[:4], leaf.Digest[:4], agent.name, digest[:4])
	}
	if err := leaf.Verify(&agent.pub); err != nil {
		return nil, fmt.Errorf("entry %d: %v", v.Index, err)
	}
	return v, nil
}

// loggedLog is the vetting log as a stranger reads it from a front end.
type loggedLog struct {
	size uint64
	root []byte
	// at lists, for each identity (vetting.Identity of agent and digest),
	// the indices of its entries.
	at      map[string][]uint64
	entries [][]byte
	pb      *tclient.ProofBuilder
	// consistent records the trees (size and root) proved a prefix of
	// this one.
	consistent map[string]bool
}

// readLog reads the whole vetting log served at url: the checkpoint
// (verified with vkey), and every entry, each proved included.
func readLog(t *testing.T, url, vkey string) *loggedLog {
	t.Helper()
	ctx := context.Background()
	f, cp, pb := servedLog(t, url+"/vetting/", vkey)
	l := &loggedLog{size: cp.Size, root: cp.Hash, at: map[string][]uint64{}, pb: pb, consistent: map[string]bool{}}
	for i := uint64(0); i < cp.Size; i++ {
		if i%256 == 0 {
			b, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, i/256, cp.Size)
			if err != nil {
				t.Fatalf("entry bundle %d from %s: %v", i/256, url, err)
			}
			l.entries = append(l.entries, b.Entries...)
		}
		e := l.entries[i]
		leaf, err := vetting.ParseLeaf(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(e), p, cp.Hash); err != nil {
			t.Fatalf("entry %d of %s: %v", i, url, err)
		}
		id := string(leaf.Identity())
		l.at[id] = append(l.at[id], i)
	}
	return l
}

// checkConsistent proves, with the served tiles, that the tree of size
// old with root oldRoot is a prefix of the log l read.
func (l *loggedLog) checkConsistent(t *testing.T, old uint64, oldRoot []byte) {
	t.Helper()
	key := fmt.Sprintf("%d %x", old, oldRoot)
	if l.consistent[key] {
		return
	}
	p, err := l.pb.ConsistencyProof(context.Background(), old, l.size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, l.size, p, oldRoot, l.root); err != nil {
		t.Fatalf("the checkpoint of size %d is not a prefix of the log at size %d: %v", old, l.size, err)
	}
	l.consistent[key] = true
}

// identityOf is the dedup identity of an agent's digest, as readLog keys it.
func identityOf(t *testing.T, agent *agentKey, digest [32]byte) string {
	t.Helper()
	tp, err := vetting.Thumbprint(&agent.pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(vetting.Identity(tp, digest))
}

// checkpointRoot returns the size and root hash of a receipt's checkpoint.
func checkpointRoot(t *testing.T, v *receipts.Verified) (uint64, []byte) {
	t.Helper()
	lines := strings.SplitN(string(v.Receipt.Proof.Checkpoint), "\n", 4)
	if len(lines) < 4 {
		t.Fatalf("receipt's checkpoint %q", v.Receipt.Proof.Checkpoint)
	}
	var size uint64
	if _, err := fmt.Sscan(lines[1], &size); err != nil {
		t.Fatal(err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return size, root
}

// TestTwoFrontEnds: two vesperlog processes serve the logs from one
// database and bucket. Concurrent submissions to both get receipts that
// verify under the OTHER front end's trust document; one statement sent
// to both at once gets one index (once a new entry, otherwise duplicates);
// no index is issued for two statements; the log ends up holding each
// statement exactly once. Likewise on the STI-CT log, one chain sent to
// both at once gets one entry and byte-identical SCTs. An agent put in the
// shared registry is accepted by both within seconds, without a restart;
// a front end with other log keys refuses to start on the backend.
func TestTwoFrontEnds(t *testing.T) {
	t.Parallel()
	be := newBackend(t, storage.AWS)
	server, cli := binaries(t)
	pki, err := stitest.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fes := startFrontEnds(t, be, server, 2, func(dir string) {
		if err := pki.Write(filepath.Join(dir, "pki")); err != nil {
			t.Fatal(err)
		}
	}, "-stict-roots", "pki/root.pem")
	dir := fes[0].dir
	va := newAgentKey(t, cli, dir, "va")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	for _, fe := range fes {
		waitAgents(t, fe.srv.url, "va")
	}

	// A third front end without the log's keys would make its own, which
	// the backend's log binding refuses.
	stranger := t.TempDir()
	cmd := exec.Command(server, be.serverArgs("-addr", "127.0.0.1:0", "-data", "data", "-vetting-origin", "e2e.test/vetting")...)
	cmd.Dir = stranger
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "copy the log's key files") {
		t.Fatalf("a front end with other keys: %v\n%s", err, out)
	}

	// Load: workers per front end, each submitting distinct statements one
	// after the other; meanwhile, rounds in which one statement goes to
	// both front ends at once, twice to each.
	const workers, perWorker, rounds, racers = 4, 25, 8, 2
	var mu sync.Mutex
	var subs []*submission
	record := func(s *submission) {
		mu.Lock()
		subs = append(subs, s)
		mu.Unlock()
	}
	raced := make([][]*submission, rounds)
	chains := []struct {
		name    string
		cert    *stitest.Cert
		precert bool
	}{{"TN", pki.TN, false}, {"SPC", pki.SPC, false}, {"critical TNAuthList", pki.CriticalTNAuthList, false}, {"precertificate", pki.Precert, true}}
	ctRaced := make([][]*ctAnswer, len(chains))
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r, c := range chains {
			var rw sync.WaitGroup
			ctRaced[r] = make([]*ctAnswer, 2*racers)
			for i := range ctRaced[r] {
				rw.Add(1)
				go func() {
					defer rw.Done()
					ctRaced[r][i] = postChain(fes[i%2].srv.url, i%2, pki.Chain(c.cert), c.precert)
				}()
			}
			rw.Wait()
		}
	}()
	for fe := range fes {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perWorker {
					label := fmt.Sprintf("fe%d worker %d statement %d", fe, w, k)
					jws, d := va.statement(label)
					record(submit(fes[fe].srv.url, fe, label, jws, d))
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range rounds {
			label := fmt.Sprintf("raced statement %d", r)
			jws, d := va.statement(label)
			var rw sync.WaitGroup
			raced[r] = make([]*submission, 2*racers)
			for i := range raced[r] {
				rw.Add(1)
				go func() {
					defer rw.Done()
					raced[r][i] = submit(fes[i%2].srv.url, i%2, label, jws, d)
				}()
			}
			rw.Wait()
		}
	}()
	wg.Wait()
	t.Logf("%d submissions to 2 front ends and %d raced rounds in %s", len(subs), rounds, time.Since(start).Round(time.Millisecond))

	// Every receipt verifies under the other front end's trust document.
	trusts := []receipts.Trust{trustOf(t, fes[0].srv.url), trustOf(t, fes[1].srv.url)}
	if n := len(trusts[0].Keys.Keys); n != 2 {
		t.Fatalf("the trust document lists %d receipt keys, want both front ends'", n)
	}
	byIndex := map[uint64][]byte{}    // index → entry
	byLabel := map[string]uint64{}    // statement → index
	labelAt := map[uint64]string{}    // index → statement
	kids := map[int]map[string]bool{} // front end → receipt key IDs
	var verified []*receipts.Verified
	check := func(s *submission) {
		t.Helper()
		if !s.ok() {
			t.Errorf("%s to fe%d: %v", s.label, s.fe, s.err)
			return
		}
		v, err := verifyReceipt(trusts[1-s.fe], s.res.Receipt, s.res.Index, va, s.digest)
		if err != nil {
			t.Errorf("%s: fe%d's receipt under fe%d's trust: %v", s.label, s.fe, 1-s.fe, err)
			return
		}
		verified = append(verified, v)
		if kids[s.fe] == nil {
			kids[s.fe] = map[string]bool{}
		}
		kids[s.fe][v.KeyID] = true
		if e, ok := byIndex[v.Index]; ok && !bytes.Equal(e, v.Entry) {
			t.Errorf("two receipts for entry %d with different entries (%s, %s)", v.Index, labelAt[v.Index], s.label)
		}
		byIndex[v.Index] = v.Entry
		if i, ok := byLabel[s.label]; ok && i != v.Index {
			t.Errorf("%s got indices %d and %d", s.label, i, v.Index)
		}
		byLabel[s.label] = v.Index
		if l, ok := labelAt[v.Index]; ok && l != s.label {
			t.Errorf("index %d issued to %q and to %q", v.Index, l, s.label)
		}
		labelAt[v.Index] = s.label
	}
	for _, s := range subs {
		check(s)
	}
	for r, round := range raced {
		fresh := 0
		for _, s := range round {
			check(s)
			if s.ok() && !s.res.Duplicate {
				fresh++
			}
		}
		if fresh != 1 {
			var desc []string
			for _, s := range round {
				desc = append(desc, fmt.Sprintf("fe%d: index %d duplicate %v err %v", s.fe, s.res.Index, s.res.Duplicate, s.err))
			}
			t.Errorf("raced statement %d: %d answers say a new entry, want 1: %s", r, fresh, strings.Join(desc, "; "))
		}
	}
	// Each chain sent to both front ends at once: one entry, one SCT.
	pub, _ := stictPublicKey(t, fes[0].dir)
	ctIndex := map[uint64]string{}
	for r, c := range chains {
		var first []byte
		var sct *ct.SignedCertificateTimestamp
		for _, a := range ctRaced[r] {
			if a.err != nil {
				t.Errorf("%s chain to fe%d: %v", c.name, a.fe, a.err)
				continue
			}
			b := sctBytes(t, a.sct)
			if first == nil {
				first, sct = b, a.sct
			} else if !bytes.Equal(b, first) {
				t.Errorf("%s chain: fe%d's SCT differs from another answer's: %x, %x", c.name, a.fe, b, first)
			}
		}
		if sct == nil {
			continue
		}
		if len(sct.Extensions) != 8 {
			t.Errorf("%s chain: SCT extensions %x", c.name, sct.Extensions)
			continue
		}
		idx := uint64(sct.Extensions[3])<<32 | uint64(sct.Extensions[4])<<24 | uint64(sct.Extensions[5])<<16 | uint64(sct.Extensions[6])<<8 | uint64(sct.Extensions[7])
		if !bytes.Equal(sct.Extensions, leafIndexExtension(idx)) {
			t.Errorf("%s chain: SCT extensions %x are not a leaf_index", c.name, sct.Extensions)
		}
		if other, ok := ctIndex[idx]; ok {
			t.Errorf("STI-CT entry %d issued to the %s chain and the %s chain", idx, other, c.name)
		}
		ctIndex[idx] = c.name
		if c.precert {
			continue
		}
		if err := ctutil.VerifySCT(pub, []*ctx509.Certificate{mustCTCert(t, c.cert.DER)}, sct, false); err != nil {
			t.Errorf("%s chain: SCT: %v", c.name, err)
		}
		// Each front end's receipt for the entry verifies under the other's
		// trust document, and holds the certificate's MerkleTreeLeaf.
		want, err := cttls.Marshal(*x509Leaf(c.cert.DER, sct))
		if err != nil {
			t.Fatal(err)
		}
		for fe := range fes {
			var rr stictserver.ReceiptResponse
			if err := json.Unmarshal(httpGet200(t, fmt.Sprintf("%s/stict/v1/receipt/%d", fes[fe].srv.url, idx)), &rr); err != nil {
				t.Fatal(err)
			}
			v, err := receipts.Verify(rr.Receipt, trusts[1-fe])
			if err != nil || v.Index != idx || !bytes.Equal(v.Entry, want) {
				t.Errorf("%s chain: fe%d's receipt for STI-CT entry %d under fe%d's trust: %v", c.name, fe, idx, 1-fe, err)
			}
		}
	}
	t.Logf("STI-CT: %d chains, each sent to both front ends at once %d times: entries %v", len(chains), 2*racers, ctIndex)
	for _, fe := range fes {
		if sth := getSTH(t, fe.srv.url+"/stict/v1/get-sth", pub); sth.TreeSize != uint64(len(chains)) {
			t.Errorf("%s: STI-CT tree size %d, want %d chains", fe.name, sth.TreeSize, len(chains))
		}
	}

	if len(kids[0]) != 1 || len(kids[1]) != 1 || fmt.Sprint(kids[0]) == fmt.Sprint(kids[1]) {
		t.Errorf("receipt keys: fe0 %v, fe1 %v; want one each, not the same", kids[0], kids[1])
	}
	// vesper verify-receipt agrees, for one receipt of each front end
	// checked under the other's trust document.
	for fe := range fes {
		runVesper(t, cli, fes[1-fe].dir, 0, "trust", "-server", fes[1-fe].srv.url, "-out", "trust.json")
		for _, s := range subs {
			if s.fe == fe && s.ok() {
				os.WriteFile(filepath.Join(fes[1-fe].dir, "other.jwt"), []byte(s.res.Receipt), 0o644)
				out := runVesper(t, cli, fes[1-fe].dir, 0, "verify-receipt", "-trust", "trust.json", "-digest", base64.RawURLEncoding.EncodeToString(s.digest[:]), "other.jwt")
				if !strings.Contains(out, fmt.Sprintf("receipt OK: entry %d of e2e.test/vetting", s.res.Index)) {
					t.Errorf("vesper verify-receipt of fe%d's receipt: %s", fe, out)
				}
				break
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// An agent put in the backend's registry: refused by both front ends
	// before, accepted by both within seconds after, without a restart.
	late := newAgentKey(t, cli, dir, "late")
	for fe := range fes {
		jws, d := late.statement(fmt.Sprintf("late agent, fe%d, before", fe))
		if s := submit(fes[fe].srv.url, fe, "", jws, d); s.status != http.StatusForbidden {
			t.Fatalf("fe%d: a statement of an unregistered agent: %d %v", fe, s.status, s.err)
		}
	}
	put := time.Now()
	be.addAgent(t, server, cli, dir, "-name", "late", "-key", "late.pub.jwk")
	lateLabels := map[string][32]byte{}
	for fe := range fes {
		label := fmt.Sprintf("late agent, fe%d", fe)
		jws, d := late.statement(label)
		var s *submission
		eventually(t, 5*time.Second, fmt.Sprintf("fe%d accepting the agent put in the registry", fe), func() (bool, string) {
			s = submit(fes[fe].srv.url, fe, label, jws, d)
			return s.ok(), fmt.Sprint(s.err)
		})
		if _, err := verifyReceipt(trusts[1-fe], s.res.Receipt, s.res.Index, late, d); err != nil {
			t.Fatalf("late agent's receipt from fe%d: %v", fe, err)
		}
		lateLabels[label] = d
		t.Logf("fe%d accepted the new agent %s after the put", fe, s.start.Sub(put).Round(time.Millisecond))
	}

	// The log holds each statement once, and nothing else.
	want := len(byLabel) + len(lateLabels)
	if want != len(fes)*workers*perWorker+rounds+len(lateLabels) {
		t.Fatalf("%d distinct statements logged, want %d", want, len(fes)*workers*perWorker+rounds+len(lateLabels))
	}
	for _, fe := range fes {
		l := readLog(t, fe.srv.url, fe.srv.vkey)
		if l.size != uint64(want) {
			t.Fatalf("%s: tree size %d, want %d distinct statements", fe.name, l.size, want)
		}
		for label, idx := range byLabel {
			id := identityOf(t, va, sha256.Sum256([]byte(label)))
			if at := l.at[id]; len(at) != 1 || at[0] != idx {
				t.Errorf("%s: %q is logged at %v, its receipts say %d", fe.name, label, at, idx)
			}
		}
		for label, d := range lateLabels {
			if at := l.at[identityOf(t, late, d)]; len(at) != 1 {
				t.Errorf("%s: %q is logged at %v", fe.name, label, at)
			}
		}
		// Every receipt's checkpoint is a prefix of the log as it is now.
		for _, v := range verified {
			size, root := checkpointRoot(t, v)
			l.checkConsistent(t, size, root)
		}
	}
}

// TestFrontEndKilled: two front ends under load; one is killed (SIGKILL)
// mid-load. The other keeps accepting submissions. Every receipt either
// issued, the killed one's included, verifies, and the survivor's later
// log holds the same entry at its index, in a tree of which the receipt's
// checkpoint is a prefix: no receipt is lost. The statements whose
// requests the kill cut short are logged once when sent again to the
// survivor (past the dead front end's dedup claims). Restarted, the killed
// front end serves the grown log and accepts submissions again.
func TestFrontEndKilled(t *testing.T) {
	t.Parallel()
	be := newBackend(t, storage.AWS)
	server, cli := binaries(t)
	fes := startFrontEnds(t, be, server, 2, nil)
	victim, survivor := fes[0], fes[1]
	va := newAgentKey(t, cli, victim.dir, "va")
	be.addAgent(t, server, cli, victim.dir, "-name", "va", "-key", "va.pub.jwk")
	for _, fe := range fes {
		waitAgents(t, fe.srv.url, "va")
	}

	// The kill lands at a random point of the submissions' cycle (a
	// second or so: batching, sequencing, waiting for a checkpoint).
	const workers, load = 3, 12 * time.Second
	killAfter := 4*time.Second + rand.N(1500*time.Millisecond)
	var mu sync.Mutex
	var subs []*submission
	var killed time.Time // zero until the kill
	start := time.Now()
	deadline := start.Add(load)
	var wg sync.WaitGroup
	for fe := range fes {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; time.Now().Before(deadline); k++ {
					label := fmt.Sprintf("fe%d worker %d statement %d", fe, w, k)
					jws, d := va.statement(label)
					s := submit(fes[fe].srv.url, fe, label, jws, d)
					mu.Lock()
					subs = append(subs, s)
					dead := !killed.IsZero()
					mu.Unlock()
					if !s.ok() && fe == 0 && dead {
						return // the victim is gone
					}
				}
			}()
		}
	}
	time.Sleep(killAfter)
	mu.Lock()
	if err := victim.srv.cmd.Process.Kill(); err != nil {
		mu.Unlock()
		t.Fatal(err)
	}
	killed = time.Now()
	mu.Unlock()
	_ = victim.srv.cmd.Wait()
	wg.Wait()

	var beforeKill, afterKill, lostRequests int
	var failed []*submission
	for _, s := range subs {
		switch {
		case s.fe == 0 && s.ok():
			beforeKill++
		case s.fe == 0:
			failed = append(failed, s)
		case !s.ok():
			t.Errorf("%s: the survivor failed it: %v", s.label, s.err)
		case s.start.After(killed):
			afterKill++
		}
	}
	lostRequests = len(failed)
	t.Logf("%d submissions in %s, the victim killed after %s: it answered %d before, %d of its requests failed; the survivor answered %d begun after the kill",
		len(subs), load, killAfter.Round(time.Millisecond), beforeKill, lostRequests, afterKill)
	if beforeKill == 0 || afterKill == 0 {
		t.Fatalf("the victim answered %d before the kill, the survivor %d after it; want some of each", beforeKill, afterKill)
	}

	// What the victim left of the statements whose requests failed.
	for _, s := range failed {
		t.Logf("%s: sent %s the kill, failed %s it: %v; its dedup claim: %s", s.label,
			relative(s.start, killed), relative(s.end, killed), s.err, claimOf(t, be, va, s.digest))
	}

	// A client sends the statements whose requests failed to the
	// survivor. One the victim claimed but did not log waits for its
	// claim to go stale.
	var rw sync.WaitGroup
	retried := make([]*submission, len(failed))
	for i, s := range failed {
		rw.Add(1)
		go func() {
			defer rw.Done()
			retried[i] = submit(survivor.srv.url, 1, s.label, s.jws, s.digest)
		}()
	}
	rw.Wait()
	for _, s := range retried {
		if !s.ok() {
			t.Errorf("%s, sent again to the survivor: %v", s.label, s.err)
		} else {
			t.Logf("%s (cut short by the kill): index %d, duplicate %v, after %s", s.label, s.res.Index, s.res.Duplicate, s.end.Sub(s.start).Round(time.Millisecond))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every receipt verifies under the survivor's trust document; the
	// survivor's log now has the same entry at each receipt's index, and
	// each receipt's checkpoint is a prefix of it.
	trust := trustOf(t, survivor.srv.url)
	l := readLog(t, survivor.srv.url, survivor.srv.vkey)
	var receipted []*submission
	for _, s := range subs {
		if s.ok() {
			receipted = append(receipted, s)
		}
	}
	receipted = append(receipted, retried...)
	byLabel := map[string]uint64{}
	checked := map[uint64]bool{}
	for _, s := range receipted {
		v, err := verifyReceipt(trust, s.res.Receipt, s.res.Index, va, s.digest)
		if err != nil {
			t.Errorf("%s: fe%d's receipt: %v", s.label, s.fe, err)
			continue
		}
		if i, ok := byLabel[s.label]; ok && i != v.Index {
			t.Errorf("%s got indices %d and %d", s.label, i, v.Index)
		}
		byLabel[s.label] = v.Index
		if v.Index >= l.size || !bytes.Equal(l.entries[v.Index], v.Entry) {
			t.Errorf("%s: fe%d's receipt for entry %d is lost: the survivor's log (size %d) holds another entry there", s.label, s.fe, v.Index, l.size)
			continue
		}
		size, root := checkpointRoot(t, v)
		l.checkConsistent(t, size, root)
		if checked[v.Index] {
			continue
		}
		checked[v.Index] = true
		// A fresh receipt from the survivor, against its latest checkpoint.
		var rr vetting.ReceiptResponse
		if err := json.Unmarshal(httpGet200(t, fmt.Sprintf("%s/vetting/v1/receipt/%d", survivor.srv.url, v.Index)), &rr); err != nil {
			t.Fatal(err)
		}
		fresh, err := verifyReceipt(trust, rr.Receipt, v.Index, va, s.digest)
		if err != nil {
			t.Errorf("%s: the survivor's fresh receipt for entry %d: %v", s.label, v.Index, err)
		} else if !bytes.Equal(fresh.Entry, v.Entry) {
			t.Errorf("%s: entry %d changed between fe%d's receipt and the survivor's", s.label, v.Index, s.fe)
		}
	}
	// The log holds each statement once, and nothing else.
	if l.size != uint64(len(byLabel)) {
		t.Errorf("the survivor's log has %d entries for %d distinct statements", l.size, len(byLabel))
	}
	for label, idx := range byLabel {
		if at := l.at[identityOf(t, va, sha256.Sum256([]byte(label)))]; len(at) != 1 || at[0] != idx {
			t.Errorf("%q is logged at %v, its receipts say %d", label, at, idx)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d receipts (%d entries) verified and found in the survivor's log of %d", len(receipted), len(checked), l.size)

	// The killed front end, restarted, serves the grown log, and answers a
	// statement the survivor logged after the kill as that entry.
	again := be.start(t, server, victim.dir)
	grown := readLog(t, again.url, again.vkey)
	if grown.size < l.size {
		t.Fatalf("the restarted front end serves size %d, the survivor had %d", grown.size, l.size)
	}
	var last *submission
	for _, s := range subs {
		if s.fe == 1 && s.ok() && (last == nil || s.res.Index > last.res.Index) {
			last = s
		}
	}
	var s *submission
	eventually(t, 30*time.Second, "the restarted front end accepting submissions", func() (bool, string) {
		s = submit(again.url, 0, last.label, last.jws, last.digest)
		return s.ok(), fmt.Sprint(s.err)
	})
	if !s.res.Duplicate || s.res.Index != last.res.Index {
		t.Fatalf("%s sent to the restarted front end: index %d duplicate %v; the survivor logged it at %d", last.label, s.res.Index, s.res.Duplicate, last.res.Index)
	}
	// A duplicate is answered from the settled claim, before the dedup
	// store has caught up; a new statement waits for it (503, retried).
	jws, d := va.statement("after the restart")
	eventually(t, 30*time.Second, "the restarted front end's dedup store catching up", func() (bool, string) {
		s = submit(again.url, 0, "after the restart", jws, d)
		return s.status != http.StatusServiceUnavailable, fmt.Sprint(s.err)
	})
	if !s.ok() || s.res.Duplicate || s.res.Index < l.size {
		t.Fatalf("a new statement at the restarted front end: %+v %v", s.res, s.err)
	} else if _, err := verifyReceipt(trust, s.res.Receipt, s.res.Index, va, d); err != nil {
		t.Fatal(err)
	}
}

// ctAnswer is one add-chain (or add-pre-chain) and its outcome.
type ctAnswer struct {
	fe  int
	sct *ct.SignedCertificateTimestamp
	err error
}

// postChain posts a chain to the STI-CT log at url; it is addChain for the
// submitting goroutines, which may not t.Fatal.
func postChain(url string, fe int, chain [][]byte, precert bool) *ctAnswer {
	a := &ctAnswer{fe: fe}
	path := "/stict/v1/add-chain"
	if precert {
		path = "/stict/v1/add-pre-chain"
	}
	body, _ := json.Marshal(ct.AddChainRequest{Chain: chain})
	resp, err := loadClient.Post(url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		a.err = fmt.Errorf("%d %s %v", resp.StatusCode, bytes.TrimSpace(b), err)
		return a
	}
	var r ct.AddChainResponse
	if err := json.Unmarshal(b, &r); err != nil {
		a.err = err
		return a
	}
	a.sct, a.err = r.ToSignedCertificateTimestamp()
	return a
}

// relative says when t was, relative to ref: "5ms before", "1s after".
func relative(t, ref time.Time) string {
	if t.Before(ref) {
		return ref.Sub(t).Round(time.Millisecond).String() + " before"
	}
	return t.Sub(ref).Round(time.Millisecond).String() + " after"
}

// claimOf describes the dedup claim in the backend (the VesperClaim table
// of the vetting log's database) of an agent's digest.
func claimOf(t *testing.T, be *backend, agent *agentKey, digest [32]byte) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(be.aws.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName += "_vetting"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.Sum256([]byte(identityOf(t, agent, digest)))
	var idx sql.NullInt64
	var claimed int64
	err = db.QueryRow("SELECT idx, claimed FROM VesperClaim WHERE h = ?", h[:]).Scan(&idx, &claimed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "none"
	case err != nil:
		return err.Error()
	case idx.Valid:
		return fmt.Sprintf("settled at index %d", idx.Int64)
	}
	return fmt.Sprintf("unsettled, claimed %s ago", time.Since(time.UnixMilli(claimed)).Round(time.Millisecond))
}
