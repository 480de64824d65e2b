package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// stictLog is a real STI-CT log (Tessera POSIX, static-ct-api) served
// over HTTP, with three entries: a TN certificate, a precertificate and
// an SPC certificate.
type stictLog struct {
	dir  string // its POSIX directory
	url  string
	pki  *stitest.PKI
	view *Log
}

func startSTICT(t *testing.T) *stictLog {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pki, err := stitest.Generate(time.Now())
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
	sc := storage.Config{Dir: dir}
	st, err := storage.Open(ctx, sc, "stict")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := storage.OpenIndex(ctx, sc, "stict", "leafhash")
	if err != nil {
		t.Fatal(err)
	}
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{Signer: signer, CT: true, SplitBundle: stict.SplitTile, Antispam: st.Antispam, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	issuers, err := stictserver.OpenIssuers(filepath.Join(dir, "stict", "issuer"))
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := receipts.NewSigner(rk)
	mux := http.NewServeMux()
	l.HandleReads(mux, "/stict")
	stictserver.New(stictserver.Config{Log: l, Signer: signer, Roots: roots, Issuers: issuers, LeafHashes: l.NewIndex(idx, stictserver.LeafHash), Receipts: rs}).Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sl := &stictLog{dir: filepath.Join(dir, "stict"), url: srv.URL + "/stict", pki: pki}
	for _, c := range []struct {
		cert    *stitest.Cert
		precert bool
	}{{pki.TN, false}, {pki.Precert, true}, {pki.SPC, false}} {
		body, _ := json.Marshal(ct.AddChainRequest{Chain: pki.Chain(c.cert)})
		path := "/v1/add-chain"
		if c.precert {
			path = "/v1/add-pre-chain"
		}
		resp, err := http.Post(sl.url+path, "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("add: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	pol, err := policy.ForLog(signer.VKey())
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewHTTPFetcher(sl.url, HTTPOptions{StaticCT: true, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	sl.view = &Log{Origin: "example.test/stict", Policy: pol, Fetch: f, StaticCT: true}
	return sl
}

// audit audits the log's latest checkpoint, checking every chain against
// the roots the log serves.
func (sl *stictLog) audit(t *testing.T) error {
	t.Helper()
	ctx := context.Background()
	cp, _, err := sl.view.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 3 {
		t.Fatalf("size %d", cp.Size)
	}
	roots, err := FetchRoots(ctx, nil, sl.url)
	if err != nil {
		t.Fatal(err)
	}
	return sl.view.Audit(ctx, cp, AuditOptions{Check: ChainChecker(ctx, sl.view.Fetch.(IssuerFetcher), roots)})
}

func TestSTICTAudit(t *testing.T) {
	sl := startSTICT(t)
	if err := sl.audit(t); err != nil {
		t.Fatalf("clean STI-CT log: %v", err)
	}
	// The same log read from its directory.
	dv := *sl.view
	dv.Fetch = NewStaticCTDirFetcher(sl.dir)
	cp, _, err := dv.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := FetchRoots(context.Background(), nil, sl.url)
	if err := dv.Audit(context.Background(), cp, AuditOptions{Check: ChainChecker(context.Background(), dv.Fetch.(IssuerFetcher), roots)}); err != nil {
		t.Fatalf("from the directory: %v", err)
	}
	// Entries are the logged certificates, in order, with their TNAuthList.
	var got []string
	for e, err := range sl.view.Entries(context.Background(), cp, 0, 1) {
		if err != nil {
			t.Fatal(err)
		}
		leaf, _, err := stict.ParseTileLeaf(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		c, tns, err := leaf.Parse()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Subject.CommonName+" "+tns.String())
	}
	want := []string{"STI TN certificate range:12025550100+100 tn:18001231234", "STI TN precertificate range:12025550100+100 tn:18001231234", "STI SPC certificate spc:1234"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s", strings.Join(got, "\n"))
	}
}

func TestSTICTAuditTampering(t *testing.T) {
	t.Run("data tile", func(t *testing.T) {
		sl := startSTICT(t)
		p := filepath.Join(sl.dir, "tile", "data", "000.p", "3")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[100] ^= 1 // inside the first certificate
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sl.audit(t); err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Fatalf("tampered data tile: %v", err)
		}
	})
	fp := func(sl *stictLog) string {
		h := sha256.Sum256(sl.pki.Intermediate.DER)
		return filepath.Join(sl.dir, "issuer", hex.EncodeToString(h[:]))
	}
	// The server caches issuers, so these tamper with a copy read from
	// its directory.
	t.Run("issuer replaced", func(t *testing.T) {
		sl := startSTICT(t)
		sl.view.Fetch = NewStaticCTDirFetcher(sl.dir)
		if err := os.WriteFile(fp(sl), sl.pki.OtherRoot.DER, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sl.audit(t); err == nil || !strings.Contains(err.Error(), "does not hash to its name") {
			t.Fatalf("replaced issuer: %v", err)
		}
	})
	t.Run("issuer removed", func(t *testing.T) {
		sl := startSTICT(t)
		sl.view.Fetch = NewStaticCTDirFetcher(sl.dir)
		if err := os.Remove(fp(sl)); err != nil {
			t.Fatal(err)
		}
		if err := sl.audit(t); err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("removed issuer: %v", err)
		}
	})
	t.Run("other roots", func(t *testing.T) {
		// An auditor that pins other STI roots finds chains the log
		// should not have accepted.
		sl := startSTICT(t)
		ctx := context.Background()
		cp, _, _ := sl.view.Checkpoint(ctx)
		roots, _ := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sl.pki.OtherRoot.DER}))
		err := sl.view.Audit(ctx, cp, AuditOptions{Check: ChainChecker(ctx, sl.view.Fetch.(IssuerFetcher), roots)})
		if err == nil || !strings.Contains(err.Error(), "should have refused") || !strings.Contains(err.Error(), "entry 0") {
			t.Fatalf("other roots: %v", err)
		}
	})
}
