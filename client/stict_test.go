package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/tessera/ctonly"

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
	// signer is the log's key (its vkey is the policy's log line).
	signer *stict.Signer
}

// startSTICT starts the log; opts adjust its OpenConfig (witnesses).
func startSTICT(t *testing.T, opts ...func(*stictserver.OpenConfig)) *stictLog {
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
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := receipts.NewSigner(rk)
	be, err := storage.Open(ctx, storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	oc := stictserver.OpenConfig{Storage: be, Signer: signer, Roots: roots, Receipts: rs, CheckpointInterval: 100 * time.Millisecond}
	for _, o := range opts {
		o(&oc)
	}
	svc, err := stictserver.Open(ctx, oc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Log().Close(context.Background()) })
	mux := http.NewServeMux()
	svc.Log().HandleReads(mux, "/stict")
	svc.Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	sl := &stictLog{dir: filepath.Join(dir, "stict"), url: srv.URL + "/stict", pki: pki, signer: signer}
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
		if err := sl.audit(t); !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), "entry 0: issuer") || !strings.Contains(err.Error(), "does not hash to its name") {
			t.Fatalf("replaced issuer: %v", err)
		}
	})
	t.Run("issuer removed", func(t *testing.T) {
		sl := startSTICT(t)
		sl.view.Fetch = NewStaticCTDirFetcher(sl.dir)
		if err := os.Remove(fp(sl)); err != nil {
			t.Fatal(err)
		}
		if err := sl.audit(t); !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), "entry 0: the log does not serve issuer") {
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

// rewriteLeaf rewrites entry i of the data tile at path in place, with
// edit applied to it (Tessera's own encoding of a data-tile leaf).
func rewriteLeaf(t *testing.T, path string, i int, edit func(*ctonly.Entry)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := stict.SplitTile(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for j, raw := range leaves {
		l, _, err := stict.ParseTileLeaf(raw)
		if err != nil {
			t.Fatal(err)
		}
		e := l.Entry()
		if j == i {
			edit(e)
		}
		out = append(out, e.LeafData(l.LeafIndex)...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// otherPrecert issues another precertificate like pki.Precert, with its
// own serial, key and so TBSCertificate.
func otherPrecert(t *testing.T, pki *stitest.PKI) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "another precertificate"},
		NotBefore: pki.Precert.Cert.NotBefore, NotAfter: pki.Precert.Cert.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, e := range pki.Precert.Cert.Extensions {
		if e.Id.Equal(stict.OIDTNAuthList) || e.Id.Equal(stict.OIDPoison) {
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pki.Intermediate.Cert, k.Public(), pki.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestSTICTAuditOutsideTheTree: a data tile carries a precertificate and
// the chain's fingerprints beside the leaf the tree hashes, so the tree
// cannot catch them changed; the chain check must.
func TestSTICTAuditOutsideTheTree(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		edit func(*stictLog, *ctonly.Entry)
		want string
	}{
		{"precertificate swapped for another valid one", func(sl *stictLog, e *ctonly.Entry) { e.Precertificate = otherPrecert(t, sl.pki) },
			"entry 1: the logged TBSCertificate or issuer key hash is not the one of the precertificate"},
		{"precertificate swapped for the certificate", func(sl *stictLog, e *ctonly.Entry) { e.Precertificate = sl.pki.TN.DER },
			"entry 1: the log accepted a chain it should have refused: precertificate mismatch"},
		{"chain names an issuer the log never had", func(sl *stictLog, e *ctonly.Entry) { e.FingerprintsChain[0] = sha256.Sum256([]byte("no such issuer")) },
			"entry 1: the log does not serve issuer"},
		{"chain without its intermediate", func(sl *stictLog, e *ctonly.Entry) { e.FingerprintsChain = e.FingerprintsChain[1:] },
			"entry 1: the log accepted a chain it should have refused: chain does not verify to an accepted STI root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sl := startSTICT(t)
			sl.view.Fetch = NewStaticCTDirFetcher(sl.dir)
			rewriteLeaf(t, filepath.Join(sl.dir, "tile", "data", "000.p", "3"), 1, func(e *ctonly.Entry) { c.edit(sl, e) })
			cp, _, err := sl.view.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := sl.view.Audit(ctx, cp, AuditOptions{}); err != nil {
				t.Fatalf("the tree does not cover the change, yet: %v", err)
			}
			if err := sl.audit(t); !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("audit: %v; want %q", err, c.want)
			}
		})
	}
}

// TestSTICTAuditBadEntries: with BadEntry, every bad entry is reported
// and the audit goes on, then fails; a resumed audit still fails.
func TestSTICTAuditBadEntries(t *testing.T) {
	ctx := context.Background()
	sl := startSTICT(t)
	cp, _, err := sl.view.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sl.pki.OtherRoot.DER}))
	resume := filepath.Join(t.TempDir(), "audit.pos")
	var reported []string
	o := AuditOptions{
		Check: ChainChecker(ctx, sl.view.Fetch.(IssuerFetcher), other),
		BadEntry: func(i uint64, err error) {
			reported = append(reported, fmt.Sprintf("%d:%v", i, errors.Is(err, stict.ErrUntrusted)))
		},
		ResumeFile: resume,
	}
	err = sl.view.Audit(ctx, cp, o)
	if !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), "3 of 3; the first is entry 0: the log accepted a chain it should have refused") {
		t.Fatalf("audit: %v", err)
	}
	if got := strings.Join(reported, " "); got != "0:true 1:true 2:true" {
		t.Fatalf("reported %s", got)
	}
	reported = nil
	if err := sl.view.Audit(ctx, cp, o); !errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), "3 of 3") || len(reported) != 0 {
		t.Fatalf("resumed audit: %v (reported again: %v)", err, reported)
	}
	// The right roots, from scratch: clean.
	roots, _ := FetchRoots(ctx, nil, sl.url)
	o.Check, o.ResumeFile = ChainChecker(ctx, sl.view.Fetch.(IssuerFetcher), roots), ""
	if err := sl.view.Audit(ctx, cp, o); err != nil || len(reported) != 0 {
		t.Fatalf("clean audit: %v %v", err, reported)
	}
}

// flakyIssuers fails every issuer read as a network would.
type flakyIssuers struct{ IssuerFetcher }

func (flakyIssuers) ReadIssuer(context.Context, [32]byte) ([]byte, error) {
	return nil, errors.New("connection reset")
}

// TestSTICTAuditNetworkIsNotTheLog: an issuer the network fails to bring
// stops the audit; it does not convict the entry.
func TestSTICTAuditNetworkIsNotTheLog(t *testing.T) {
	ctx := context.Background()
	sl := startSTICT(t)
	cp, _, _ := sl.view.Checkpoint(ctx)
	roots, _ := FetchRoots(ctx, nil, sl.url)
	var reported int
	err := sl.view.Audit(ctx, cp, AuditOptions{
		Check:    ChainChecker(ctx, flakyIssuers{sl.view.Fetch.(IssuerFetcher)}, roots),
		BadEntry: func(uint64, error) { reported++ },
	})
	if err == nil || errors.Is(err, ErrBadEntry) || !strings.Contains(err.Error(), "entry 0: issuer") || reported != 0 {
		t.Fatalf("audit: %v (%d reported)", err, reported)
	}
}

// TestSTICTLeafHash: a data-tile leaf must be whole and name its index.
func TestSTICTLeafHash(t *testing.T) {
	sl := startSTICT(t)
	b, err := os.ReadFile(filepath.Join(sl.dir, "tile", "data", "000.p", "3"))
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := stict.SplitTile(b)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _, _ := stict.ParseTileLeaf(leaves[1])
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Index: 1, Data: leaves[1]}, ""},
		{Entry{Index: 2, Data: leaves[1]}, "entry 2: data-tile leaf says it is entry 1"},
		{Entry{Index: 1, Data: append(slices.Clone(leaves[1]), 0)}, "entry 1: 1 bytes after the data-tile leaf"},
		{Entry{Index: 1, Data: leaves[1][:len(leaves[1])-1]}, "entry 1: tile leaf: malformed chain fingerprints"},
	} {
		h, err := sl.view.LeafHash(c.e)
		switch {
		case c.want == "" && (err != nil || !bytes.Equal(h, leaf.LeafHash())):
			t.Errorf("leaf 1: %x, %v", h, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%q: got %v", c.want, err)
		}
	}
}
