package status

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/witness"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// fakeLog is a log in memory that counts the bundles read from it.
type fakeLog struct {
	checkpoint []byte // nil: none published
	entries    [][]byte
	reads      atomic.Int64
}

func (f *fakeLog) Checkpoint(context.Context) ([]byte, error) {
	if f.checkpoint == nil {
		return nil, fmt.Errorf("%w: no checkpoint", problem.ErrNotFound)
	}
	return f.checkpoint, nil
}

func (f *fakeLog) ReadBundle(_ context.Context, n, size uint64) ([][]byte, error) {
	f.reads.Add(1)
	start, end := n*256, min((n+1)*256, size)
	if start >= end {
		return nil, fmt.Errorf("%w: bundle %d", problem.ErrNotFound, n)
	}
	return f.entries[start:end], nil
}

// sign gives f a checkpoint of its size, signed by s, with extra
// signature lines appended.
func (f *fakeLog) sign(t *testing.T, s note.Signer, extra ...string) {
	t.Helper()
	root := sha256.Sum256([]byte(fmt.Sprint(len(f.entries))))
	body := fmt.Sprintf("%s\n%d\n%s\n", s.Name(), len(f.entries), base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: body}, s)
	if err != nil {
		t.Fatal(err)
	}
	f.checkpoint = append(signed, []byte(strings.Join(extra, ""))...)
}

const hostile = `<script>alert(1)</script>`

type fixture struct {
	page     *Page
	vet, ct  *fakeLog
	agent    *vetting.Agent
	digests  [][32]byte // of the vetting entries, by index
	tnLeaf   []byte     // the STI-CT entry at index 0's leaf hash
	recorder *vlog.WitnessRecorder
	now      time.Time
}

// newFixture makes a vetting log of nVet entries (subject hostile at
// index 1) logged by one registered agent, and an STI-CT log of nCT
// entries whose entry 0 is the test PKI's TN certificate (12025550100+100
// and 18001231234) and the others an SPC certificate, with a hostile
// subject at index 1.
func newFixture(t *testing.T, nVet, nCT int) *fixture {
	t.Helper()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := &fixture{vet: &fakeLog{}, ct: &fakeLog{}, now: now}

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	empty, err := vetting.ParseAgents([]byte(`{"agents":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	agents, err := empty.Add("example-va", jose.JSONWebKey{Key: pub}, "")
	if err != nil {
		t.Fatal(err)
	}
	f.agent = agents.List()[0]
	byIdentity := map[string]uint64{}
	for i := 0; i < nVet; i++ {
		d := sha256.Sum256([]byte(fmt.Sprint("digest ", i)))
		l := &vetting.Leaf{Timestamp: uint64(now.UnixMilli()), Alg: vetting.EdDSA, AgentKey: f.agent.Thumbprint, Digest: d, IssuedAt: uint64(now.Unix()), Subject: fmt.Sprint("entity-", i)}
		if i == 1 {
			l.Subject = hostile
		}
		b, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		f.vet.entries = append(f.vet.entries, b)
		f.digests = append(f.digests, d)
		byIdentity[string(l.Identity())] = uint64(i)
	}
	vs, vv, err := note.GenerateKey(rand.Reader, "example.test/vetting")
	if err != nil {
		t.Fatal(err)
	}
	vsigner, _ := note.NewSigner(vs)
	_, wvkey, err := witness.GenerateKey("w1.example", witness.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	// w1 cosigned the checkpoint 30 s before now (cosignature/v1: key
	// ID, timestamp, signature; the page reads, not verifies, it).
	id, _, _ := keyOf(wvkey)
	cosig := binary.BigEndian.AppendUint32(nil, id)
	cosig = binary.BigEndian.AppendUint64(cosig, uint64(now.Add(-30*time.Second).Unix()))
	cosig = append(cosig, make([]byte, 64)...)
	f.vet.sign(t, vsigner, "— w1.example "+base64.StdEncoding.EncodeToString(cosig)+"\n")
	pol, err := policy.Parse([]byte("log " + vv + "\nwitness w1 " + wvkey + " https://w1.example/w\nwitness w2 " + mustWitnessKey(t, "w2.example") + " https://w2.example/w\ngroup g any w1 w2\nquorum g\n"))
	if err != nil {
		t.Fatal(err)
	}

	pki, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewTN(hostile)
	if err != nil {
		t.Fatal(err)
	}
	leafHashes := map[string]uint64{}
	for i := 0; i < nCT; i++ {
		der := pki.SPC.DER
		switch i {
		case 0:
			der = pki.TN.DER
		case 1:
			der = other.DER // a TN certificate too, but made for a hostile subject
		}
		e := ctonly.Entry{Timestamp: uint64(now.UnixMilli()), Certificate: der, FingerprintsChain: [][32]byte{sha256.Sum256(pki.Intermediate.DER)}}
		b := e.LeafData(uint64(i))
		tl, _, err := stict.ParseTileLeaf(b)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.tnLeaf = tl.LeafHash()
		}
		leafHashes[string(tl.LeafHash())] = uint64(i)
		f.ct.entries = append(f.ct.entries, b)
	}
	// The STI-CT checkpoint is signed with an RFC 6962 key (type 0x05)
	// whose signature carries its time in milliseconds.
	ctv := "example.test/stict+0a0b0c0d+" + base64.StdEncoding.EncodeToString(append([]byte{0x05}, make([]byte, 32)...))
	ctsig := binary.BigEndian.AppendUint32(nil, 0x0a0b0c0d)
	ctsig = binary.BigEndian.AppendUint64(ctsig, uint64(now.Add(-1500*time.Millisecond).UnixMilli()))
	ctsig = append(ctsig, make([]byte, 70)...)
	root := sha256.Sum256(nil)
	f.ct.checkpoint = []byte(fmt.Sprintf("example.test/stict\n%d\n%s\n\n— example.test/stict %s\n", nCT, base64.StdEncoding.EncodeToString(root[:]), base64.StdEncoding.EncodeToString(ctsig)))

	// w2 refused the vetting log's last checkpoint.
	f.recorder = vlog.NewWitnessRecorder(roundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusConflict, Body: io.NopCloser(strings.NewReader(`{"title":"Conflict","detail":"old size 5 is not my size 7"}`)), Header: http.Header{}}, nil
	}))
	req := httptest.NewRequest("POST", "https://w2.example/w/add-checkpoint", strings.NewReader("old 0\n\nexample.test/vetting\n1\nAAAA\n"))
	if resp, err := f.recorder.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	f.page = New(Config{
		Vetting: Log{Reader: f.vet, Origin: "example.test/vetting", Prefix: "/vetting", VKeys: []string{vv}, Policy: pol},
		Agents:  func() *vetting.Agents { return agents },
		LookupDigest: func(_ context.Context, agent, digest [32]byte) (uint64, error) {
			if i, ok := byIdentity[string(vetting.Identity(agent, digest))]; ok {
				return i, nil
			}
			return 0, fmt.Errorf("%w: not logged", problem.ErrNotFound)
		},
		STICT: &Log{Reader: f.ct, Origin: "example.test/stict", Prefix: "/stict", VKeys: []string{ctv}},
		LookupLeafHash: func(_ context.Context, h []byte) (uint64, error) {
			if i, ok := leafHashes[string(h)]; ok {
				return i, nil
			}
			return 0, fmt.Errorf("%w: no such leaf", problem.ErrNotFound)
		},
		Witnesses: f.recorder,
		Now:       func() time.Time { return now },
	})
	return f
}

func mustWitnessKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := witness.GenerateKey(name, witness.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func get(t *testing.T, h http.Handler, query string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+query, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /%s: Content-Type %q", query, ct)
	}
	return rec.Code, rec.Body.String()
}

// TestStatusPageOverview checks what the page shows of each log, that
// hostile subjects are escaped, and that it reads a bounded number of
// bundles.
func TestStatusPageOverview(t *testing.T) {
	f := newFixture(t, 300, 3)
	code, body := get(t, f.page, "")
	if code != 200 {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, want := range []string{
		`<html lang="en">`,
		"example.test/vetting", "example.test/stict",
		"300 entries", "3 entries",
		// Vetting: 30 s since w1's cosignature; STI-CT: its RFC 6962 time.
		"30s <span class=\"note\">(signed 2026-11-30T11:59:30Z)", "2s <span class=\"note\">(signed 2026-11-30T11:59:58Z)",
		// Each witness: w1 not asked by this process but cosigned the checkpoint; w2 refused, and why.
		"w1", "not asked yet", "yes, at 2026-11-30T11:59:30Z",
		"w2", "refused", "409 Conflict: old size 5 is not my size 7",
		// The latest entries, decoded, with links.
		`<a href="/?kind=vetting-index&amp;q=299">299</a>`, `<a href="/vetting/v1/receipt/299">`, "example-va", "entity-299",
		base64.RawURLEncoding.EncodeToString(f.digests[299][:]),
		"12025550100–12025550199 (100 numbers)", "18001231234", "1234", "CN=STI TN certificate,O=vesperlog test", hex.EncodeToString(f.tnLeaf),
		`<a href="/stict/v1/receipt/0">`,
		// The STI-CT hostile subject (which crypto/x509 writes with
		// RFC 2253 backslashes), HTML-escaped.
		`CN=\&lt;script\&gt;alert(1)\&lt;/script\&gt;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "entity-289") || !strings.Contains(body, "entity-290") {
		t.Errorf("page does not show exactly the latest %d vetting entries", LatestEntries)
	}
	if strings.Contains(body, "<script") {
		t.Errorf("page has the hostile subject unescaped")
	}
	// Entries 290–299 span bundles 1 (256–299) only; the STI-CT log's 3, bundle 0.
	if n := f.vet.reads.Load(); n != 1 {
		t.Errorf("the vetting log's latest entries took %d bundle reads, want 1", n)
	}
	if n := f.ct.reads.Load(); n != 1 {
		t.Errorf("the STI-CT log's latest entries took %d bundle reads, want 1", n)
	}

	// Index 1's hostile vetting subject, escaped in the results.
	if code, body := get(t, f.page, "?kind=vetting-index&q=1"); code != 200 || strings.Contains(body, hostile) || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("vetting entry 1: %d, escaped subject missing or raw subject present", code)
	}
}

// TestStatusPageSearch is the search form's answers: found, not found,
// and bad input (400, with the reason on the page).
func TestStatusPageSearch(t *testing.T) {
	f := newFixture(t, 300, 3)
	d7 := base64.RawURLEncoding.EncodeToString(f.digests[7][:])
	for _, tc := range []struct {
		name, kind, q string
		code          int
		want          []string
	}{
		{"digest, base64url", "digest", d7, 200, []string{"1 entry for digest " + d7, `href="/?kind=vetting-index&amp;q=7"`, `href="/vetting/v1/receipt/7"`, "example-va", "entity-7"}},
		{"digest, hex", "digest", hex.EncodeToString(f.digests[7][:]), 200, []string{"1 entry for digest " + d7}},
		{"digest not logged", "digest", strings.Repeat("A", 43), 200, []string{"No entries for digest"}},
		{"digest malformed", "digest", "not-a-digest", 400, []string{`role="alert"`, "is not a vetting digest", `aria-invalid="true"`}},
		{"digest with markup", "digest", `<b>x</b>`, 400, []string{"&#34;&lt;b&gt;x&lt;/b&gt;&#34; is not a vetting digest"}},
		{"vetting index", "vetting-index", "299", 200, []string{"Entry 299 of the vetting log.", "entity-299"}},
		{"vetting index beyond", "vetting-index", "300", 200, []string{"The vetting log has no entry 300: its latest checkpoint has 300 entries."}},
		{"vetting index malformed", "vetting-index", "-1", 400, []string{"is not an entry index"}},
		{"STI-CT index", "stict-index", "0", 200, []string{"Entry 0 of the STI-CT log.", "18001231234"}},
		{"telephone number in a range", "tn", "+1 (202) 555-0142", 200, []string{"2 certificates whose TNAuthList covers 12025550142", "CN=STI TN certificate", "Searched all 3 entries.", `href="/?kind=stict-index&amp;q=0"`, `href="/stict/v1/receipt/0"`}},
		{"telephone number, one", "tn", "18001231234", 200, []string{"2 certificates whose TNAuthList covers 18001231234"}},
		{"SPC", "tn", "1234", 200, []string{"1 certificate whose TNAuthList covers 1234 (as a number, or as an SPC)", "CN=STI SPC certificate"}},
		{"telephone number not covered", "tn", "12025550200", 200, []string{"No certificates whose TNAuthList covers 12025550200"}},
		{"telephone number malformed", "tn", "call me", 400, []string{"is not a telephone number"}},
		{"telephone number too long", "tn", "1234567890123456", 400, []string{"is not a telephone number"}},
		{"leaf hash", "leaf-hash", hex.EncodeToString(f.tnLeaf), 200, []string{"is entry 0 of the STI-CT log", "CN=STI TN certificate"}},
		{"leaf hash, base64", "leaf-hash", base64.StdEncoding.EncodeToString(f.tnLeaf), 200, []string{"is entry 0 of the STI-CT log"}},
		{"leaf hash unknown", "leaf-hash", strings.Repeat("00", 32), 200, []string{"No STI-CT entry has leaf hash"}},
		{"leaf hash malformed", "leaf-hash", "abc", 400, []string{"is not a leaf hash"}},
		{"empty", "digest", "  ", 400, []string{"Enter something to search for."}},
		{"too long", "digest", strings.Repeat("A", maxQuery+1), 400, []string{"nothing searchable is longer"}},
		{"unknown kind", "everything", "x", 400, []string{"Choose what to search for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, f.page, "?"+url.Values{"kind": {tc.kind}, "q": {tc.q}}.Encode())
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q; results: %s", w, results(body))
				}
			}
			// The page and the logs are shown whatever the search.
			if !strings.Contains(body, "example.test/stict") {
				t.Errorf("page lacks the logs")
			}
		})
	}
}

// results is the page's search section, for failure messages.
func results(body string) string {
	i, j := strings.Index(body, `id="search"`), strings.Index(body, `id="log-vetting"`)
	if i < 0 || j < i {
		return body
	}
	return body[i:j]
}

// TestStatusPageWithoutSTICT: a server without the STI-CT log offers no
// STI-CT searches and refuses them with 400.
func TestStatusPageWithoutSTICT(t *testing.T) {
	f := newFixture(t, 3, 1)
	f.page.cfg.STICT = nil
	code, body := get(t, f.page, "")
	if code != 200 || strings.Contains(body, "STI-CT log</h2>") || strings.Contains(body, `value="tn"`) {
		t.Errorf("GET / without STI-CT: %d, shows the STI-CT log or its searches", code)
	}
	for _, kind := range []string{"tn", "leaf-hash", "stict-index"} {
		code, body := get(t, f.page, "?kind="+kind+"&q=1")
		if code != 400 || !strings.Contains(body, "The STI-CT log does not run on this server.") {
			t.Errorf("%s without STI-CT: %d", kind, code)
		}
	}
}

// TestStatusPageNoCheckpoint: a fresh log says so and shows no entries.
func TestStatusPageNoCheckpoint(t *testing.T) {
	f := newFixture(t, 0, 0)
	f.vet.checkpoint = nil
	code, body := get(t, f.page, "")
	if code != 200 || !strings.Contains(body, "No checkpoint is published yet.") {
		t.Fatalf("GET / with no checkpoint: %d", code)
	}
	code, body = get(t, f.page, "?kind=vetting-index&q=0")
	if code != 200 || !strings.Contains(body, "has no entry 0: its latest checkpoint has 0 entries") {
		t.Errorf("index search with no checkpoint: %d %s", code, results(body))
	}
}

// TestStatusPageTNSearchBounded: a telephone-number search reads only
// the latest TNScanEntries entries, one bundle at a time, and says so: a
// certificate older than that is not found.
func TestStatusPageTNSearchBounded(t *testing.T) {
	f := newFixture(t, 1, TNScanEntries+1000)
	before := f.ct.reads.Load()
	code, body := get(t, f.page, "?kind=tn&q=12025550142")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"No certificates whose TNAuthList covers 12025550142", fmt.Sprintf("Searched the latest %d of %d entries", TNScanEntries, TNScanEntries+1000)} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q: %s", want, results(body))
		}
	}
	// The scan (2048 entries: 9 bundles, as they do not start on a
	// bundle boundary) and the latest entries (1 bundle).
	if n := f.ct.reads.Load() - before; n > 10 {
		t.Errorf("telephone-number search read %d bundles, want at most 10", n)
	}
	// The SPC, in every entry but two, stops at MaxTNResults.
	_, body = get(t, f.page, "?kind=tn&q=1234")
	if !strings.Contains(body, fmt.Sprintf("%d certificates whose", MaxTNResults)) || !strings.Contains(body, fmt.Sprintf("Showing the newest %d matches", MaxTNResults)) {
		t.Errorf("SPC search does not stop at %d: %s", MaxTNResults, results(body))
	}
}

// TestCheckpointAgeWithoutTimestamps: an Ed25519-only checkpoint carries
// no time; its age is how long this server has seen it unchanged.
func TestCheckpointAgeWithoutTimestamps(t *testing.T) {
	f := newFixture(t, 2, 1)
	now := f.now
	f.page.cfg.Now = func() time.Time { return now }
	f.page.cfg.Vetting.Policy = nil
	vs, vv, _ := note.GenerateKey(rand.Reader, "example.test/vetting")
	s, _ := note.NewSigner(vs)
	f.vet.sign(t, s)
	f.page.cfg.Vetting.VKeys = []string{vv}
	get(t, f.page, "")
	now = now.Add(95 * time.Second)
	_, body := get(t, f.page, "")
	if !strings.Contains(body, "at least 1m35s") || !strings.Contains(body, "unchanged since this server first read it at 2026-11-30T12:00:00Z") {
		t.Errorf("age of an untimed checkpoint: %s", body[strings.Index(body, "Checkpoint age"):][:200])
	}
	// A new checkpoint starts again.
	f.vet.entries = f.vet.entries[:1]
	f.vet.sign(t, s)
	if _, body := get(t, f.page, ""); !strings.Contains(body, "at least 0s") {
		t.Errorf("age of a new checkpoint: %s", body[strings.Index(body, "Checkpoint age"):][:200])
	}
	if !bytes.Contains(f.vet.checkpoint, []byte("\n1\n")) {
		t.Fatal("fixture: checkpoint not re-signed")
	}
}
