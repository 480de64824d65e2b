package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	badger "github.com/transparency-dev/tessera/storage/posix/antispam"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/idempotency"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

type harness struct {
	t      testing.TB
	url    string
	log    *vlog.Log
	trust  receipts.Trust
	es, ed crypto.Signer // registered agents
	// revoked is an agent revoked a minute before now; limited one that
	// may log 1 statement a second, 2 at once.
	revoked, limited crypto.Signer
	rs               *receipts.Signer
	agents           *vetting.Agents // the registry the server has
	now              time.Time
}

func newHarness(t testing.TB) *harness { return newHarnessWith(t, nil) }

// newHarnessWith starts a vetting log whose antispam store is wrapped by wrap, if set.
func newHarnessWith(t testing.TB, wrap func(tessera.Antispam) tessera.Antispam) *harness {
	t.Helper()
	return newHarnessAdmission(t, wrap, nil)
}

// newHarnessAdmission is newHarnessWith with the service's Admission set.
func newHarnessAdmission(t testing.TB, wrap func(tessera.Antispam) tessera.Antispam, adm *vlog.Admission) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.test/vetting")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	driver, err := posix.New(ctx, posix.Config{Path: filepath.Join(dir, "vetting")})
	if err != nil {
		t.Fatal(err)
	}
	var as tessera.Antispam
	if as, err = badger.NewAntispam(ctx, filepath.Join(dir, "antispam"), badger.AntispamOpts{}); err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		as = wrap(as)
	}
	l, err := vlog.Open(ctx, driver, vlog.Options{Signer: signer, Format: vlog.TlogTiles(Identity), Antispam: as, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	be, err := storage.Open(ctx, storage.Config{Dir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })

	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	agents := &vetting.Agents{}
	agents, _ = agents.Add("es-agent", jose.JSONWebKey{Key: es.Public()}, "")
	agents, _ = agents.Add("ed-agent", jose.JSONWebKey{Key: ed.Public()}, "")
	revoked, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	limited, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	agents, _ = agents.Add("revoked-agent", jose.JSONWebKey{Key: revoked.Public()}, "")
	agents, _ = agents.Add("limited-agent", jose.JSONWebKey{Key: limited.Public()}, "")
	now := time.Now()
	agents, _ = agents.Revoke("revoked-agent", now.Add(-time.Minute), "key compromised")
	if agents, err = agents.SetRate("limited-agent", &vetting.Rate{PerSecond: 1, Burst: 2}); err != nil {
		t.Fatal(err)
	}

	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := receipts.NewSigner(rk)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, log: l, es: es, ed: ed, revoked: revoked, limited: limited, rs: rs, agents: agents, now: now}
	// The policy the server gives a log without witnesses: its own key.
	p, err := policy.ForLog(vkey)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(Config{Log: l, Agents: func() *vetting.Agents { return agents }, Receipts: rs, Now: func() time.Time { return h.now },
		Idempotency: idempotency.New(idempotency.Config{State: be.State()}), Policy: p, Admission: adm})
	mux := http.NewServeMux()
	svc.Handle(mux, "/vetting")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/vetting"
	h.trust = receipts.Trust{Keys: receipts.NewKeySet(rs.PublicJWK()), Policy: p}
	return h
}

// statement signs a statement about digest d with key k.
func (h *harness) statement(k crypto.Signer, d byte, sub string, iat time.Time) string {
	h.t.Helper()
	pub := jose.JSONWebKey{Key: k.Public()}
	st, err := vetting.NewStatement(&pub, [32]byte{d}, sub, uint64(iat.Unix()))
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := st.Sign(k)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) post(path, contentType, body string) (int, http.Header, []byte) {
	h.t.Helper()
	return h.postKey(path, contentType, body, "")
}

// postKey posts with an Idempotency-Key field, if key is set.
func (h *harness) postKey(path, contentType, body, key string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (h *harness) get(path string) (int, []byte) {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) add(stmt string) vetting.AddResponse {
	h.t.Helper()
	code, _, body := h.post("/v1/add", "application/jose", stmt)
	if code != 200 {
		h.t.Fatalf("add: %d %s", code, body)
	}
	var r vetting.AddResponse
	if err := json.Unmarshal(body, &r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// verify checks a receipt and that its entry is the leaf of digest d by key k.
func (h *harness) verify(receipt string, k crypto.Signer, d byte) *receipts.Verified {
	h.t.Helper()
	v, err := receipts.Verify(receipt, h.trust)
	if err != nil {
		h.t.Fatalf("receipt does not verify: %v", err)
	}
	leaf, err := vetting.ParseLeaf(v.Entry)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := leaf.Verify(&jose.JSONWebKey{Key: k.Public()}); err != nil {
		h.t.Fatalf("logged leaf does not verify alone: %v", err)
	}
	if leaf.Digest != [32]byte{d} {
		h.t.Fatalf("receipt is for digest %x", leaf.Digest)
	}
	return v
}

func (h *harness) size() uint64 {
	cp, err := h.log.Checkpoint(context.Background())
	if err != nil {
		return 0
	}
	n, err := vlog.CheckpointSize(cp)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestAddAndReceipts(t *testing.T) {
	h := newHarness(t)
	r1 := h.add(h.statement(h.es, 1, "Business_42", h.now))
	if r1.Duplicate {
		t.Fatal("first submission marked duplicate")
	}
	h.verify(r1.Receipt, h.es, 1)
	r2 := h.add(h.statement(h.ed, 2, "", h.now))
	if r2.Index != r1.Index+1 {
		t.Fatalf("second index %d after %d", r2.Index, r1.Index)
	}
	h.verify(r2.Receipt, h.ed, 2)

	// Same agent, same digest, a later statement: the existing entry.
	again := h.add(h.statement(h.es, 1, "Business_42", h.now.Add(time.Second)))
	if !again.Duplicate || again.Index != r1.Index {
		t.Fatalf("resubmission: %+v", again)
	}
	v := h.verify(again.Receipt, h.es, 1)
	leaf, _ := vetting.ParseLeaf(v.Entry)
	if leaf.IssuedAt != uint64(h.now.Unix()) {
		t.Fatal("resubmission's receipt is not for the first statement")
	}
	// Another agent, same digest: a new entry.
	other := h.add(h.statement(h.ed, 1, "", h.now))
	if other.Duplicate || other.Index == r1.Index {
		t.Fatalf("another agent's digest: %+v", other)
	}

	// A fresh receipt for any index, and lookups.
	code, body := h.get(fmt.Sprintf("/v1/receipt/%d", r1.Index))
	var rr vetting.ReceiptResponse
	if code != 200 || json.Unmarshal(body, &rr) != nil {
		t.Fatalf("receipt: %d %s", code, body)
	}
	if v := h.verify(rr.Receipt, h.es, 1); v.Checkpoint.Size != 3 {
		t.Fatalf("fresh receipt against size %d, want 3", v.Checkpoint.Size)
	}
	agentTP, _ := vetting.Thumbprint(&jose.JSONWebKey{Key: h.ed.Public()})
	enc := base64.RawURLEncoding.EncodeToString
	digest := [32]byte{2}
	code, body = h.get("/v1/lookup/" + enc(agentTP[:]) + "/" + enc(digest[:]))
	var lr vetting.LookupResponse
	if code != 200 || json.Unmarshal(body, &lr) != nil || lr.Index != r2.Index {
		t.Fatalf("lookup: %d %s", code, body)
	}
}

func TestBatch(t *testing.T) {
	h := newHarness(t)
	var sts []string
	for d := byte(10); d < 15; d++ {
		sts = append(sts, h.statement(h.ed, d, fmt.Sprintf("entity-%d", d), h.now))
	}
	sts = append(sts, sts[0]) // the same statement twice in one batch
	body, _ := json.Marshal(vetting.BatchRequest{Statements: sts})
	code, _, out := h.post("/v1/add-batch", "application/json", string(body))
	if code != 200 {
		t.Fatalf("batch: %d %s", code, out)
	}
	var br vetting.BatchResponse
	if err := json.Unmarshal(out, &br); err != nil || len(br.Entries) != len(sts) {
		t.Fatalf("batch answer: %s", out)
	}
	seen := map[uint64]bool{}
	for i, e := range br.Entries[:5] {
		if e.Problem != nil || seen[e.Index] {
			t.Fatalf("entry %d: %+v", i, e)
		}
		seen[e.Index] = true
		h.verify(e.Receipt, h.ed, byte(10+i))
	}
	if last := br.Entries[5]; last.Index != br.Entries[0].Index || (last.Duplicate == br.Entries[0].Duplicate) {
		t.Fatalf("repeated statement: %+v vs %+v", last, br.Entries[0])
	}
	if h.size() != 5 {
		t.Fatalf("log size %d, want 5", h.size())
	}
}

// TestBatchFailuresLogOnce: a batch whose entries fail logs one line per
// kind of problem, with the count and the first entry, not a line per
// entry; the answer still carries each entry's problem.
func TestBatchFailuresLogOnce(t *testing.T) {
	logs := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	h := newHarness(t)
	// Three digests logged under one subject, then sent again under
	// another: a conflict each, beside one new statement.
	var sts []string
	for d := byte(1); d <= 3; d++ {
		h.add(h.statement(h.ed, d, "first", h.now))
		sts = append(sts, h.statement(h.ed, d, "second", h.now))
	}
	sts = append(sts, h.statement(h.ed, 4, "", h.now))
	body, _ := json.Marshal(vetting.BatchRequest{Statements: sts})
	code, _, out := h.post("/v1/add-batch", "application/json", string(body))
	var br vetting.BatchResponse
	if err := json.Unmarshal(out, &br); code != 200 || err != nil || len(br.Entries) != len(sts) {
		t.Fatalf("batch: %d %s", code, out)
	}
	for i, want := range []int{409, 409, 409, 0} {
		if got := br.Entries[i].Problem; (got == nil) != (want == 0) || got != nil && got.Status != want {
			t.Fatalf("entry %d: %+v, want status %d", i, br.Entries[i], want)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request failed" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 || lines[0]["status"] != 409.0 || lines[0]["entries"] != 3.0 || lines[0]["first_entry"] != 0.0 {
		t.Fatalf("failure lines: %v\nall logs:\n%s", lines, logs)
	}
}

// TestRefusals has one row per way a submission is refused. None may
// change the log.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	h.add(h.statement(h.es, 1, "first-subject", h.now))
	// The harness's clock stands still: the limited agent's bucket,
	// emptied here, stays empty.
	h.add(h.statement(h.limited, 1, "", h.now))
	h.add(h.statement(h.limited, 2, "", h.now))
	unregistered, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := h.statement(h.es, 3, "", h.now)
	parts := strings.Split(good, ".")
	otherSig := strings.Split(h.statement(h.es, 4, "", h.now), ".")[2]
	batch := func(sts ...string) string {
		b, _ := json.Marshal(vetting.BatchRequest{Statements: sts})
		return string(b)
	}
	tooMany := make([]string, MaxBatch+1)
	for i := range tooMany {
		tooMany[i] = good
	}
	// Hostile statements, built by hand from good's header and payload and
	// signed (where a signature is needed to get that far) with the
	// registered key.
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	enc := base64.RawURLEncoding.EncodeToString
	signed := func(hdr, payload string) string {
		in := enc([]byte(hdr)) + "." + enc([]byte(payload))
		d := sha256.Sum256([]byte(in))
		r, sv, err := ecdsa.Sign(rand.Reader, h.es.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		sv.FillBytes(sig[32:])
		return in + "." + enc(sig)
	}
	withHeader := func(from, to string) string {
		if !strings.Contains(string(hdr), from) {
			t.Fatalf("header %s has no %s", hdr, from)
		}
		return strings.Replace(string(hdr), from, to, 1)
	}
	withPayload := func(from, to string) string {
		if !strings.Contains(string(payload), from) {
			t.Fatalf("payload %s has no %s", payload, from)
		}
		return strings.Replace(string(payload), from, to, 1)
	}
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: h.es.Public()})
	hs256 := func() string {
		in := enc([]byte(withHeader(`"alg":"ES256"`, `"alg":"HS256"`))) + "." + parts[1]
		m := hmac.New(sha256.New, pubJWK)
		m.Write([]byte(in))
		return in + "." + enc(m.Sum(nil))
	}()
	unknownKid := [32]byte{7}
	var kid struct{ Kid string }
	_ = json.Unmarshal(hdr, &kid)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, c := range []struct {
		name, path, contentType, body string
		status                        int
	}{
		{"unknown agent", "/v1/add", "application/jose", h.statement(unregistered, 3, "", h.now), 403},
		{"signature of another statement", "/v1/add", "application/jose", parts[0] + "." + parts[1] + "." + otherSig, 401},
		{"not a JWS", "/v1/add", "application/jose", "hello", 400},
		{"iat too old", "/v1/add", "application/jose", h.statement(h.es, 3, "", h.now.Add(-11*time.Minute)), 400},
		{"iat in the future", "/v1/add", "application/jose", h.statement(h.es, 3, "", h.now.Add(11*time.Minute)), 400},
		{"same digest, other subject", "/v1/add", "application/jose", h.statement(h.es, 1, "other-subject", h.now), 409},
		{"wrong content type", "/v1/add", "application/json", good, 415},
		{"oversized body", "/v1/add", "application/jose", good + strings.Repeat("A", 2048), 413},
		{"batch with one bad statement", "/v1/add-batch", "application/json", batch(good, "hello"), 400},
		{"batch with an unknown agent", "/v1/add-batch", "application/json", batch(good, h.statement(unregistered, 5, "", h.now)), 403},
		{"empty batch", "/v1/add-batch", "application/json", batch(), 400},
		{"batch over the limit", "/v1/add-batch", "application/json", batch(tooMany...), 413},
		{"batch not JSON", "/v1/add-batch", "application/json", "[", 400},
		{"batch with statements twice", "/v1/add-batch", "application/json",
			`{"statements":[],"statements":[` + strconv.Quote(h.statement(h.es, 6, "", h.now)) + `]}`, 400},
		{"batch with an unknown member", "/v1/add-batch", "application/json",
			`{"statements":[` + strconv.Quote(h.statement(h.es, 7, "", h.now)) + `],"dry_run":true}`, 400},
		{"revoked agent", "/v1/add", "application/jose", h.statement(h.revoked, 1, "", h.now), 403},
		{"revoked agent, statement dated before its revocation", "/v1/add", "application/jose", h.statement(h.revoked, 1, "", h.now.Add(-5*time.Minute)), 403},
		{"batch with a revoked agent's statement", "/v1/add-batch", "application/json", batch(good, h.statement(h.revoked, 2, "", h.now)), 403},
		{"agent over its rate limit", "/v1/add", "application/jose", h.statement(h.limited, 3, "", h.now), 429},
		{"batch with a statement of an agent over its rate limit", "/v1/add-batch", "application/json", batch(good, h.statement(h.limited, 3, "", h.now)), 429},
		{"batch over an agent's burst", "/v1/add-batch", "application/json",
			batch(h.statement(h.limited, 3, "", h.now), h.statement(h.limited, 4, "", h.now), h.statement(h.limited, 5, "", h.now)), 413},
		// Alg confusion: none, and HS256 keyed with the agent's public key.
		{"alg none", "/v1/add", "application/jose", enc([]byte(withHeader(`"alg":"ES256"`, `"alg":"none"`))) + "." + parts[1] + "." + parts[2], 400},
		{"alg none, no signature", "/v1/add", "application/jose", enc([]byte(withHeader(`"alg":"ES256"`, `"alg":"none"`))) + "." + parts[1] + ".", 400},
		{"HS256 keyed with the public key", "/v1/add", "application/jose", hs256, 400},
		{"unknown kid, signed by a registered key", "/v1/add", "application/jose",
			signed(withHeader(kid.Kid, enc(unknownKid[:])), string(payload)), 403},
		{"kid of another length", "/v1/add", "application/jose", signed(withHeader(`"kid":"`, `"kid":"AAAA`), string(payload)), 400},
		// Non-canonical JSON: duplicate members, trailing data, invalid UTF-8, depth.
		{"header with alg twice", "/v1/add", "application/jose", signed(withHeader(`"alg":"ES256"`, `"alg":"none","alg":"ES256"`), string(payload)), 400},
		{"payload with sub twice", "/v1/add", "application/jose", signed(string(hdr), withPayload(`{`, `{"sub":"x",`)), 400},
		{"payload with trailing data", "/v1/add", "application/jose", signed(string(hdr), string(payload)+`{}`), 400},
		{"payload with invalid UTF-8", "/v1/add", "application/jose", signed(string(hdr), withPayload(`{`, "{\"sub\":\"\xff\",")), 400},
		{"payload nested 200 deep", "/v1/add", "application/jose", signed(string(hdr), withPayload(`{`, `{"x":`+deep[:200]+deep[len(deep)-200:]+`,`)), 400},
		{"batch with trailing data", "/v1/add-batch", "application/json", batch(good) + `{}`, 400},
		{"batch with invalid UTF-8", "/v1/add-batch", "application/json", "{\"statements\":[\"\xff\"]}", 400},
		{"batch nested 20000 deep", "/v1/add-batch", "application/json", `{"statements":[` + deep + `]}`, 400},
	} {
		t.Run(c.name, func(t *testing.T) { h.refused(t, c.path, c.contentType, c.body, "", c.status) })
	}
	// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header-07 2.7):
	// a malformed key is 400, a key reused for another request 422.
	used := idempotency.FormatKey("used-once")
	if code, _, body := h.postKey("/v1/add", "application/jose", h.statement(h.es, 8, "", h.now), used); code != 200 {
		t.Fatalf("first use of a key: %d %s", code, body)
	}
	for _, c := range []struct {
		name, path, contentType, body, key string
		status                             int
	}{
		{"Idempotency-Key not an sf-string", "/v1/add", "application/jose", good, "8e03978e-40d5-43e8-bc93-6894a57f9324", 400},
		{"Idempotency-Key empty", "/v1/add", "application/jose", good, `""`, 400},
		{"Idempotency-Key with parameters", "/v1/add-batch", "application/json", batch(good), `"k";p=1`, 400},
		{"Idempotency-Key reused with another body", "/v1/add", "application/jose", good, used, 422},
	} {
		t.Run(c.name, func(t *testing.T) { h.refused(t, c.path, c.contentType, c.body, c.key, c.status) })
	}
	for path, status := range map[string]int{
		"/v1/receipt/99":      404,
		"/v1/receipt/01":      400,
		"/v1/receipt/x":       400,
		"/v1/receipt/-1":      400,
		"/v1/lookup/AAAA/BBB": 400,
		"/v1/lookup/" + strings.Repeat("A", 43) + "/" + strings.Repeat("A", 43): 404,
	} {
		if code, body := h.get(path); code != status {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, status)
		}
	}
}

// refused posts body (with an Idempotency-Key if key is set) and checks
// that the answer is a status problem and that the log did not grow.
func (h *harness) refused(t *testing.T, path, contentType, body, key string, status int) {
	t.Helper()
	before := h.size()
	code, hdr, out := h.postKey(path, contentType, body, key)
	if code != status || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %s %s, want %d problem", code, hdr.Get("Content-Type"), out, status)
	}
	var p problem.Details
	if err := json.Unmarshal(out, &p); err != nil || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %s", out)
	}
	if code == 401 && hdr.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if code == 429 && hdr.Get("Retry-After") != "1" {
		t.Errorf("429 with Retry-After %q, want 1 (the limited agent logs one a second)", hdr.Get("Retry-After"))
	}
	if code == 403 && strings.Contains(t.Name(), "revoked") && !strings.Contains(p.Detail, "revoked at") {
		t.Errorf("a revoked agent's 403 does not name the revocation: %q", p.Detail)
	}
	time.Sleep(150 * time.Millisecond) // a checkpoint interval
	if after := h.size(); after != before {
		t.Fatalf("log grew from %d to %d", before, after)
	}
}

// overloadable wraps a real antispam store; while on is set, it answers as
// Tessera's does when its follower lags: ErrPushbackAntispam.
type overloadable struct {
	tessera.Antispam
	on atomic.Bool
}

func (o *overloadable) Decorator() func(tessera.AddFn) tessera.AddFn {
	inner := o.Antispam.Decorator()
	return func(next tessera.AddFn) tessera.AddFn {
		add := inner(next)
		return func(ctx context.Context, e *tessera.Entry) tessera.IndexFuture {
			if o.on.Load() {
				return func() (tessera.Index, error) { return tessera.Index{}, tessera.ErrPushbackAntispam }
			}
			return add(ctx, e)
		}
	}
}

// TestOverload: when Tessera pushes back, a submission gets 503 with
// Retry-After and is not logged; once the pressure is gone, the same
// statement is accepted.
func TestOverload(t *testing.T) {
	var o *overloadable
	h := newHarnessWith(t, func(as tessera.Antispam) tessera.Antispam {
		o = &overloadable{Antispam: as}
		return o
	})
	h.add(h.statement(h.es, 1, "", h.now))
	o.on.Store(true)
	stmt := h.statement(h.es, 2, "", h.now)
	code, hdr, out := h.post("/v1/add", "application/jose", stmt)
	if code != 503 || hdr.Get("Retry-After") == "" || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("overloaded add: %d %v %s", code, hdr, out)
	}
	// A batch in which every statement is pushed back is a 503 too.
	body, _ := json.Marshal(vetting.BatchRequest{Statements: []string{stmt, h.statement(h.es, 3, "", h.now)}})
	code, hdr, out = h.post("/v1/add-batch", "application/json", string(body))
	if code != 503 || hdr.Get("Retry-After") == "" || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("overloaded batch: %d %v %s", code, hdr, out)
	}
	time.Sleep(150 * time.Millisecond)
	if n := h.size(); n != 1 {
		t.Fatalf("log size %d after refused adds, want 1", n)
	}
	o.on.Store(false)
	if r := h.add(stmt); r.Duplicate || r.Index != 1 {
		t.Fatalf("after the overload: %+v", r)
	}
}

// TestReceiptsNeedQuorum: a log whose checkpoints lack the witness quorum
// (published fail-open) issues no receipts: 503, so the client retries.
func TestReceiptsNeedQuorum(t *testing.T) {
	h := newHarness(t)
	h.add(h.statement(h.es, 1, "", h.now))
	_, edvkey, err := note.GenerateKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	wvkey, err := fnote.VKeyToCosignatureV1(edvkey)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.trust.Policy.Logs()
	pol, err := policy.Parse([]byte("log " + logs[0].VKey + "\nwitness w " + wvkey + "\nquorum w\n"))
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := receipts.NewSigner(rk)
	s := New(Config{Log: h.log, Receipts: rs, Policy: pol})
	_, err = s.Receipt(context.Background(), 0)
	if p := problem.For(err); p.Status != 503 || !strings.Contains(p.Detail, "witness policy") {
		t.Fatalf("receipt without the quorum: %v", err)
	}
	// With the log's own policy (no witnesses), the same receipt is issued.
	s = New(Config{Log: h.log, Receipts: rs, Policy: h.trust.Policy})
	if _, err := s.Receipt(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
}

// TestIdempotencyKey: a retry with the key of an answered submission gets
// the same answer and leaves the log alone; an answer the log pushed back
// (503) is not kept, so the retry with the key runs and is logged.
func TestIdempotencyKey(t *testing.T) {
	var o *overloadable
	h := newHarnessWith(t, func(as tessera.Antispam) tessera.Antispam {
		o = &overloadable{Antispam: as}
		return o
	})
	key := idempotency.FormatKey("8e03978e-40d5-43e8-bc93-6894a57f9324")
	stmt := h.statement(h.es, 1, "", h.now)
	_, _, first := h.postKey("/v1/add", "application/jose", stmt, key)
	batch, _ := json.Marshal(vetting.BatchRequest{Statements: []string{h.statement(h.ed, 2, "", h.now), h.statement(h.ed, 3, "", h.now)}})
	_, _, firstBatch := h.postKey("/v1/add-batch", "application/json", string(batch), key)
	if !strings.Contains(string(first), `"duplicate":false`) || strings.Count(string(firstBatch), `"duplicate":false`) != 2 {
		t.Fatalf("first answers: %s\n%s", first, firstBatch)
	}
	// Later, in the log's time: a replay does not sign a new receipt.
	h.now = h.now.Add(time.Minute)
	for range 2 {
		if code, _, again := h.postKey("/v1/add", "application/jose", stmt, key); code != 200 || string(again) != string(first) {
			t.Fatalf("retry: %d %s, want %s", code, again, first)
		}
		if code, _, again := h.postKey("/v1/add-batch", "application/json", string(batch), key); code != 200 || string(again) != string(firstBatch) {
			t.Fatalf("batch retry: %d %s, want %s", code, again, firstBatch)
		}
	}
	// Without the key, the same statement is a duplicate with a new receipt.
	if again := h.add(stmt); !again.Duplicate {
		t.Fatalf("without the key: %+v", again)
	}
	time.Sleep(150 * time.Millisecond)
	if n := h.size(); n != 3 {
		t.Fatalf("log size %d, want 3", n)
	}

	o.on.Store(true)
	pushed := h.statement(h.es, 4, "", h.now)
	other := idempotency.FormatKey("other")
	if code, hdr, out := h.postKey("/v1/add", "application/jose", pushed, other); code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("overloaded: %d %s", code, out)
	}
	o.on.Store(false)
	code, _, out := h.postKey("/v1/add", "application/jose", pushed, other)
	var r vetting.AddResponse
	if code != 200 || json.Unmarshal(out, &r) != nil || r.Duplicate || r.Index != 3 {
		t.Fatalf("retry after the overload: %d %s", code, out)
	}
}
