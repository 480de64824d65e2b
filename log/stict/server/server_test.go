package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

type harness struct {
	t      testing.TB
	url    string
	dir    string
	signer *stict.Signer
	pki    *stitest.PKI
	trust  receipts.Trust
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessAdmission(t, nil)
}

// newHarnessAdmission is newHarness with the service's Admission set.
func newHarnessAdmission(t testing.TB, adm *vlog.Admission) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now()
	pki, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stict.NewSigner("example.test/stict", k)
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := receipts.NewSigner(rk)
	if err != nil {
		t.Fatal(err)
	}
	be, err := storage.Open(ctx, storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	s, err := Open(ctx, OpenConfig{Storage: be, Signer: signer, Roots: roots, Receipts: rs, CheckpointInterval: 100 * time.Millisecond, Admission: adm})
	if err != nil {
		t.Fatal(err)
	}
	l := s.Log()
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	mux := http.NewServeMux()
	l.HandleReads(mux, "/stict")
	s.Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	pol, err := policy.ForLog(signer.VKey())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, url: srv.URL + "/stict", dir: dir, signer: signer, pki: pki,
		trust: receipts.Trust{Keys: receipts.NewKeySet(rs.PublicJWK()), Policy: pol}}
}

// do makes a request and returns the status and body; want, if not zero,
// is the status expected.
func (h *harness) do(method, path, ctype string, body []byte, want int) []byte {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

func (h *harness) add(chain [][]byte, precert bool) *ct.SignedCertificateTimestamp {
	h.t.Helper()
	body, _ := json.Marshal(ct.AddChainRequest{Chain: chain})
	path := "/v1/add-chain"
	if precert {
		path = "/v1/add-pre-chain"
	}
	var resp ct.AddChainResponse
	if err := json.Unmarshal(h.do("POST", path, "application/json", body, 200), &resp); err != nil {
		h.t.Fatal(err)
	}
	sct, err := resp.ToSignedCertificateTimestamp()
	if err != nil {
		h.t.Fatal(err)
	}
	return sct
}

func (h *harness) sth() *ct.SignedTreeHead {
	h.t.Helper()
	var r ct.GetSTHResponse
	if err := json.Unmarshal(h.do("GET", "/v1/get-sth", "", nil, 200), &r); err != nil {
		h.t.Fatal(err)
	}
	sth, err := r.ToSignedTreeHead()
	if err != nil {
		h.t.Fatal(err)
	}
	sv, _ := ct.NewSignatureVerifier(h.signer.Public())
	if err := sv.VerifySTHSignature(*sth); err != nil {
		h.t.Fatalf("STH signature: %v", err)
	}
	return sth
}

func ctChain(t testing.TB, der ...[]byte) []*ctx509.Certificate {
	t.Helper()
	var out []*ctx509.Certificate
	for _, d := range der {
		c, err := ctx509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestLog(t *testing.T) {
	h := newHarness(t)
	p := h.pki

	// A certificate, then the same again: one entry, one SCT.
	sct := h.add(p.Chain(p.TN), false)
	if err := ctutil.VerifySCT(h.signer.Public(), ctChain(t, p.Chain(p.TN)...), sct, false); err != nil {
		t.Fatalf("SCT: %v", err)
	}
	sth1 := h.sth()
	if sth1.TreeSize != 1 || sth1.Timestamp < sct.Timestamp {
		t.Fatalf("STH after one entry: %+v", sth1)
	}
	again := h.add(p.Chain(p.TN), false)
	b1, _ := cttls.Marshal(*sct)
	b2, _ := cttls.Marshal(*again)
	if !bytes.Equal(b1, b2) {
		t.Fatal("a resubmitted certificate got another SCT")
	}

	// The precertificate flow ends in a certificate with an embedded SCT
	// that a standard verifier accepts; the final certificate is logged too.
	psct := h.add(p.Chain(p.Precert), true)
	sctBytes, _ := cttls.Marshal(*psct)
	list, _ := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sctBytes}}})
	final, err := p.Finalize(p.Precert, list)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctutil.VerifySCT(h.signer.Public(), ctChain(t, final.DER, p.Intermediate.DER), psct, true); err != nil {
		t.Fatalf("embedded SCT: %v", err)
	}
	h.add([][]byte{final.DER, p.Intermediate.DER}, false)
	sth := h.sth()
	if sth.TreeSize != 3 {
		t.Fatalf("tree size %d, want 3", sth.TreeSize)
	}

	// get-entries gives back what was logged, chains resolved.
	var entries ct.GetEntriesResponse
	if err := json.Unmarshal(h.do("GET", "/v1/get-entries?start=0&end=99", "", nil, 200), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries.Entries) != 3 {
		t.Fatalf("%d entries", len(entries.Entries))
	}
	var hashes [][]byte
	for i, e := range entries.Entries {
		raw, err := ct.RawLogEntryFromLeaf(int64(i), &e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if len(raw.Chain) != 2 || !bytes.Equal(raw.Chain[0].Data, p.Intermediate.DER) || !bytes.Equal(raw.Chain[1].Data, p.Root.DER) {
			t.Errorf("entry %d: chain is not intermediate, root", i)
		}
		hashes = append(hashes, rfc6962.DefaultHasher.HashLeaf(e.LeafInput))
	}
	raw, _ := ct.RawLogEntryFromLeaf(1, &entries.Entries[1])
	if raw.Leaf.TimestampedEntry.EntryType != ct.PrecertLogEntryType || !bytes.Equal(raw.Cert.Data, p.Precert.DER) {
		t.Error("entry 1 is not the precertificate")
	}

	// get-proof-by-hash, once the index has caught up.
	var pr ct.GetProofByHashResponse
	for i := 0; ; i++ {
		b := h.do("GET", "/v1/get-proof-by-hash?tree_size=3&hash="+queryEscape(hashes[1]), "", nil, 0)
		if err := json.Unmarshal(b, &pr); err == nil && pr.AuditPath != nil {
			break
		}
		if i == 100 {
			t.Fatalf("get-proof-by-hash: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pr.LeafIndex), 3, hashes[1], pr.AuditPath, sth.SHA256RootHash[:]); err != nil || pr.LeafIndex != 1 {
		t.Fatalf("inclusion of entry %d: %v", pr.LeafIndex, err)
	}

	// get-sth-consistency from the first STH.
	var cons ct.GetSTHConsistencyResponse
	if err := json.Unmarshal(h.do("GET", "/v1/get-sth-consistency?first=1&second=3", "", nil, 200), &cons); err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 1, 3, cons.Consistency, sth1.SHA256RootHash[:], sth.SHA256RootHash[:]); err != nil {
		t.Fatalf("consistency: %v", err)
	}

	// Receipts, by index and by hash, verify offline; their entry is the
	// MerkleTreeLeaf.
	var rr ReceiptResponse
	if err := json.Unmarshal(h.do("GET", "/v1/receipt-by-hash?hash="+queryEscape(hashes[1]), "", nil, 200), &rr); err != nil {
		t.Fatal(err)
	}
	v, err := receipts.Verify(rr.Receipt, h.trust)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if v.Receipt.Index != 1 || !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(v.Receipt.Entry), hashes[1]) {
		t.Fatalf("receipt for entry %d", v.Receipt.Index)
	}
	if err := json.Unmarshal(h.do("GET", "/v1/receipt/2", "", nil, 200), &rr); err != nil {
		t.Fatal(err)
	}
	if _, err := receipts.Verify(rr.Receipt, h.trust); err != nil {
		t.Fatalf("receipt 2: %v", err)
	}

	// get-roots, issuer/, and the static-ct-api reads.
	var roots ct.GetRootsResponse
	if err := json.Unmarshal(h.do("GET", "/v1/get-roots", "", nil, 200), &roots); err != nil || len(roots.Certificates) != 1 {
		t.Fatalf("get-roots: %v %v", roots, err)
	}
	fp := sha256.Sum256(p.Intermediate.DER)
	if got := h.do("GET", fmt.Sprintf("/issuer/%x", fp), "", nil, 200); !bytes.Equal(got, p.Intermediate.DER) {
		t.Error("issuer/ does not serve the intermediate")
	}
	tile := h.do("GET", "/tile/data/000.p/3", "", nil, 200)
	leaves, err := stict.SplitTile(tile)
	if err != nil || len(leaves) != 3 {
		t.Fatalf("data tile: %d leaves, %v", len(leaves), err)
	}
	h.do("GET", "/tile/entries/000.p/3", "", nil, 404)
	if cp := h.do("GET", "/checkpoint", "", nil, 200); !strings.HasPrefix(string(cp), "example.test/stict\n3\n") {
		t.Errorf("checkpoint %q", cp)
	}
}

func queryEscape(b []byte) string {
	return strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(base64.StdEncoding.EncodeToString(b))
}

// TestRefusals: every bad submission is a precise 400 (or 413/415) problem,
// and the log does not change.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	p := h.pki
	h.add(p.Chain(p.SPC), false)
	before := h.sth()
	b64 := func(c *stitest.Cert) string { return base64.StdEncoding.EncodeToString(c.DER) }
	chain := func(certs ...*stitest.Cert) string {
		var s []string
		for _, c := range certs {
			s = append(s, `"`+b64(c)+`"`)
		}
		return `{"chain":[` + strings.Join(s, ",") + `]}`
	}
	for _, c := range []struct {
		name, path, ctype, body string
		status                  int
		detail                  string
	}{
		{"untrusted", "add-chain", "", chain(p.Untrusted), 400, "does not verify to an accepted STI root"},
		{"no TNAuthList", "add-chain", "", chain(p.NoTNAuthList, p.Intermediate), 400, "no TNAuthList"},
		{"malformed TNAuthList", "add-chain", "", chain(p.BadTNAuthList, p.Intermediate), 400, "TNAuthList"},
		{"expired", "add-chain", "", chain(p.Expired, p.Intermediate), 400, "not valid at this time"},
		{"wrong key usage", "add-chain", "", chain(p.WrongKeyUsage, p.Intermediate), 400, "digitalSignature"},
		{"precert to add-chain", "add-chain", "", chain(p.Precert, p.Intermediate), 400, "add-pre-chain"},
		{"certificate to add-pre-chain", "add-pre-chain", "", chain(p.TN, p.Intermediate), 400, "precertificate"},
		{"empty chain", "add-chain", "", `{"chain":[]}`, 400, "empty chain"},
		{"not base64", "add-chain", "", `{"chain":["%%%"]}`, 400, "base64"},
		{"not DER", "add-chain", "", `{"chain":["AAAA"]}`, 400, "malformed certificate chain"},
		{"unknown field", "add-chain", "", `{"chain":[],"extra":1}`, 400, "unknown field"},
		{"trailing data", "add-chain", "", chain(p.TN, p.Intermediate) + "{}", 400, "trailing"},
		{"wrong content type", "add-chain", "text/plain", chain(p.TN, p.Intermediate), 415, "Content-Type"},
		{"too large", "add-chain", "", `{"chain":["` + strings.Repeat("A", maxChainBody) + `"]}`, 413, "over"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctype := c.ctype
			if ctype == "" {
				ctype = "application/json"
			}
			req, _ := http.NewRequest("POST", h.url+"/v1/"+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var prob struct{ Title, Detail string }
			if err := json.NewDecoder(resp.Body).Decode(&prob); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(prob.Detail, c.detail) {
				t.Fatalf("%d %s %+v, want %d with %q", resp.StatusCode, resp.Header.Get("Content-Type"), prob, c.status, c.detail)
			}
		})
	}
	for _, q := range []string{
		"/v1/get-entries?start=5&end=9", "/v1/get-entries?start=1&end=0", "/v1/get-entries?start=-1&end=0", "/v1/get-entries?start=01&end=2",
		"/v1/get-sth-consistency?first=2&second=1", "/v1/get-sth-consistency?first=1&second=9",
		"/v1/get-proof-by-hash?hash=AAAA&tree_size=1", "/v1/get-proof-by-hash?tree_size=1",
		"/v1/receipt/x", "/v1/receipt-by-hash?hash=",
	} {
		h.do("GET", q, "", nil, 400)
	}
	h.do("GET", "/v1/receipt/7", "", nil, 404)
	h.do("GET", "/issuer/00", "", nil, 404)
	time.Sleep(300 * time.Millisecond) // a checkpoint interval or more
	if after := h.sth(); after.TreeSize != before.TreeSize || after.SHA256RootHash != before.SHA256RootHash {
		t.Fatalf("refused submissions changed the log: %d entries, was %d", after.TreeSize, before.TreeSize)
	}
}

// TestAdmissionSheds: with the server's bound of entries in flight taken,
// add-chain and add-pre-chain get 503 problem+json with Retry-After
// before the chain is read, and log nothing; once freed, chains are
// logged again.
func TestAdmissionSheds(t *testing.T) {
	adm := vlog.NewAdmission(2, nil)
	h := newHarnessAdmission(t, adm)
	p := h.pki
	h.add(p.Chain(p.TN), false)
	hold, err := adm.Admit(context.Background(), "other", 2)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(ct.AddChainRequest{Chain: p.Chain(p.TN)})
	for _, path := range []string{"/v1/add-chain", "/v1/add-pre-chain"} {
		req, _ := http.NewRequest("POST", h.url+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s at the bound: %d %v %s; want 503 problem+json with Retry-After 1", path, resp.StatusCode, resp.Header, b)
		}
	}
	hold()
	h.add(p.Chain(p.TN), false)
	time.Sleep(150 * time.Millisecond) // a checkpoint interval
	if size := h.sth().TreeSize; size != 1 {
		t.Fatalf("tree size %d; want 1 (one chain, logged once)", size)
	}
	if n := adm.InFlight(); n != 0 {
		t.Fatalf("%d entries in flight after the answers; want 0", n)
	}
}
