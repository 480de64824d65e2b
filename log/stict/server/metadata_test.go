package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/loglist3"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

// TestMetadata: GET log.v3.json answers the log's CT log list v3 entry as
// JSON that certificate-transparency-go's loglist3.TiledLog reads with the
// same fields, and that reads back from TiledLog unchanged.
func TestMetadata(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := stict.NewSigner("log.example/stict", k)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	New(Config{Signer: signer, PublicURL: "https://log.example/stict", UsableSince: since}).Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/stict/log.v3.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("log.v3.json: %s, %q, %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var tl loglist3.TiledLog
	if err := json.Unmarshal(raw, &tl); err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	id := sha256.Sum256(spki)
	if tl.Description != "vesperlog STI-CT log log.example/stict" || string(tl.LogID) != string(id[:]) || string(tl.Key) != string(spki) ||
		tl.SubmissionURL != "https://log.example/stict/" || tl.MonitoringURL != "https://log.example/stict/" || tl.MMD != 60 ||
		tl.State == nil || tl.State.Usable == nil || !tl.State.Usable.Timestamp.Equal(since) || tl.TemporalInterval != nil {
		t.Fatalf("as loglist3.TiledLog: %s", raw)
	}
	if st := tl.State.LogStatus(); st != loglist3.UsableLogStatus {
		t.Errorf("state %v", st)
	}
	// The same JSON keys, both ways.
	var ours stict.LogMetadata
	if err := json.Unmarshal(raw, &ours); err != nil {
		t.Fatal(err)
	}
	back, _ := json.Marshal(tl)
	var again stict.LogMetadata
	if err := json.Unmarshal(back, &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ours, again) || !reflect.DeepEqual(ours, stict.NewLogMetadata(signer, "https://log.example/stict/", since)) {
		t.Errorf("round trip through loglist3.TiledLog:\n%+v\n%+v", ours, again)
	}
	if strings.Contains(string(raw), "temporal_interval") {
		t.Errorf("the log does not enforce a temporal interval, but says one: %s", raw)
	}
}

// TestMetadataAndDelegate: a real STI-CT log served over HTTP names its
// own URL in log.v3.json (no state without a UsableSince), and a delegate
// certificate issued through its add-pre-chain carries an SCT that
// VerifyEmbeddedSCTs accepts with the log's vkey, whose leaf_index is the
// entry's, and whose signed input hashes to the leaf the log proves.
func TestMetadataAndDelegate(t *testing.T) {
	h := newHarness(t)
	var md stict.LogMetadata
	if err := json.Unmarshal(h.do("GET", "/log.v3.json", "", nil, 200), &md); err != nil {
		t.Fatal(err)
	}
	if md.SubmissionURL != h.url+"/" || md.State != nil {
		t.Errorf("log.v3.json of the harness: %+v", md)
	}

	h.add(h.pki.Chain(h.pki.TN), false) // entry 0, so that the delegate is 1
	p := h.pki
	final, err := p.IssueDelegate(stitest.DelegateOptions{Name: "delegate", Extra: []pkix.Extension{stitest.RCDConstraint(stitest.ModeHash)}}, stitest.AddPreChain(nil, h.url))
	if err != nil {
		t.Fatal(err)
	}
	log, err := stict.CTLogFromVKey(h.signer.Name(), h.signer.VKey(), h.url)
	if err != nil {
		t.Fatal(err)
	}
	got, ignored, err := stict.VerifyEmbeddedSCTs(final.Cert, p.Intermediate.Cert, []stict.CTLog{log}, 1, time.Now())
	if err != nil || len(got) != 1 || len(ignored) != 0 {
		t.Fatalf("VerifyEmbeddedSCTs = %d, %q, %v", len(got), ignored, err)
	}
	if !got[0].HasLeafIndex || got[0].LeafIndex != 1 {
		t.Fatalf("leaf_index %d (%v), want 1", got[0].LeafIndex, got[0].HasLeafIndex)
	}
	sth := h.sth()
	leafHash := rfc6962.DefaultHasher.HashLeaf(got[0].Leaf)
	var pr ct.GetProofByHashResponse
	for i := 0; ; i++ {
		b := h.do("GET", "/v1/get-proof-by-hash?tree_size=2&hash="+queryEscape(leafHash), "", nil, 0)
		if err := json.Unmarshal(b, &pr); err == nil && pr.AuditPath != nil {
			break
		}
		if i == 100 {
			t.Fatalf("get-proof-by-hash: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pr.LeafIndex), sth.TreeSize, leafHash, pr.AuditPath, sth.SHA256RootHash[:]); err != nil || pr.LeafIndex != 1 {
		t.Fatalf("inclusion of entry %d: %v", pr.LeafIndex, err)
	}
}
