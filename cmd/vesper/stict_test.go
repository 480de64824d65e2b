package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"

	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// stictLog is a real STI-CT log (Tessera POSIX, static-ct-api) served in
// process, and a trust document that pins it as vesper trust would.
type stictLog struct {
	url   string // the log's prefix
	dir   string // its POSIX directory
	pki   *stitest.PKI
	files string // trust.json, root.pem and other-root.pem
}

func startSTICT(t *testing.T) *stictLog {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	pki, err := stitest.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.DER})
	roots, err := stict.ParseRoots(rootPEM)
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
	be, err := storage.Open(ctx, storage.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	svc, err := stictserver.Open(ctx, stictserver.OpenConfig{Storage: be, Signer: signer, Roots: roots, Receipts: rs, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Log().Close(context.Background()) })
	logDir := filepath.Join(dir, "data", "stict")
	mux := http.NewServeMux()
	svc.Log().HandleReads(mux, "/stict")
	svc.Handle(mux, "/stict")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	pol, err := policy.ForLog(signer.VKey())
	if err != nil {
		t.Fatal(err)
	}
	trust, err := json.Marshal(receipts.Configuration{
		Logs:          []receipts.LogConfiguration{{Name: "stict", Origin: "example.test/stict", VKey: signer.VKey(), URL: srv.URL + "/stict"}},
		ReceiptKeys:   *receipts.NewKeySet(rs.PublicJWK()),
		WitnessPolicy: pol.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	for name, b := range map[string][]byte{
		"trust.json":     trust,
		"root.pem":       rootPEM,
		"other-root.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.OtherRoot.DER}),
	} {
		if err := os.WriteFile(filepath.Join(files, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sl := &stictLog{url: srv.URL + "/stict", dir: logDir, pki: pki, files: files}
	sl.add(t, pki.TN, false)     // 12025550100+100, 18001231234
	sl.add(t, pki.Precert, true) // the same numbers
	sl.add(t, pki.SPC, false)    // SPC 1234
	return sl
}

// add submits c's chain; the log answers once a checkpoint covers it.
func (sl *stictLog) add(t *testing.T, c *stitest.Cert, precert bool) {
	t.Helper()
	body, _ := json.Marshal(ct.AddChainRequest{Chain: sl.pki.Chain(c)})
	path := "/v1/add-chain"
	if precert {
		path = "/v1/add-pre-chain"
	}
	resp, err := http.Post(sl.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", path, resp.Status)
	}
}

func (sl *stictLog) file(name string) string { return filepath.Join(sl.files, name) }

// vesper runs the command line in process and checks its exit code; a
// failure must be one line on standard error.
func (sl *stictLog) vesper(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != want {
		t.Fatalf("vesper %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	if want == 1 && strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("vesper %s: error is not one line: %q", strings.Join(args, " "), errb.String())
	}
	return out.String(), errb.String()
}

// TestSTICTAudit: vesper audit -log stict recomputes the tree from the
// data tiles and re-checks every chain, against the roots the log serves
// or pinned ones; a chain the log should have refused, a replaced or
// missing issuer, or a tampered data tile fails it, naming the entry.
func TestSTICTAudit(t *testing.T) {
	sl := startSTICT(t)
	trust := sl.file("trust.json")

	out, _ := sl.vesper(t, 0, "audit", "-trust", trust, "-log", "stict")
	if !strings.Contains(out, "audit OK: example.test/stict at size 3") || !strings.Contains(out, "every chain verifies") || !strings.Contains(out, "(the roots the log serves)") {
		t.Fatalf("audit: %s", out)
	}
	out, _ = sl.vesper(t, 0, "audit", "-trust", trust, "-log", "stict", "-roots", sl.file("root.pem"))
	if !strings.Contains(out, "audit OK") || strings.Contains(out, "the roots the log serves") {
		t.Fatalf("audit with pinned roots: %s", out)
	}
	// Against other roots every chain is one the log should have refused:
	// each is reported, and the audit goes on to the end, then fails.
	out, errs := sl.vesper(t, 1, "audit", "-trust", trust, "-log", "stict", "-roots", sl.file("other-root.pem"))
	for i := range 3 {
		if !strings.Contains(out, fmt.Sprintf("entry %d: the log accepted a chain it should have refused: chain does not verify to an accepted STI root", i)) {
			t.Errorf("audit against other roots does not report entry %d: %s", i, out)
		}
	}
	if !strings.Contains(errs, "3 of 3; the first is entry 0") {
		t.Errorf("audit against other roots: %s", errs)
	}
	sl.vesper(t, 2, "audit", "-trust", trust, "-log", "stict", "-agents", sl.file("trust.json"))

	// The same log read from its directory, then tampered with there.
	fromDir := func(want int) (string, string) {
		return sl.vesper(t, want, "audit", "-trust", trust, "-log", "stict", "-dir", sl.dir, "-roots", sl.file("root.pem"))
	}
	fromDir(0)
	fp := sha256.Sum256(sl.pki.Intermediate.DER)
	issuer := filepath.Join(sl.dir, "issuer", hex.EncodeToString(fp[:]))
	good, err := os.ReadFile(issuer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(issuer, sl.pki.OtherRoot.DER, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errs := fromDir(1); !strings.Contains(out, "entry 2: issuer "+hex.EncodeToString(fp[:])+" as served does not hash to its name") || !strings.Contains(errs, "3 of 3") {
		t.Errorf("replaced issuer: %s%s", out, errs)
	}
	if err := os.Remove(issuer); err != nil {
		t.Fatal(err)
	}
	if out, _ := fromDir(1); !strings.Contains(out, "entry 1: the log does not serve issuer "+hex.EncodeToString(fp[:])) {
		t.Errorf("removed issuer: %s", out)
	}
	if err := os.WriteFile(issuer, good, 0o644); err != nil {
		t.Fatal(err)
	}
	tile := filepath.Join(sl.dir, "tile", "data", "000.p", "3")
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1 // inside the first certificate
	if err := os.WriteFile(tile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs := fromDir(1); !strings.Contains(errs, "entry bundle 0 and tile 0/0 disagree from entry 0 on") {
		t.Errorf("tampered data tile: %s", errs)
	}
}

// TestSTICTMonitor: vesper monitor -log stict prints one JSON line per new
// certificate, proven in the trusted checkpoint, filtered by what its
// TNAuthList authorizes; the trusted state keeps it to new entries.
func TestSTICTMonitor(t *testing.T) {
	sl := startSTICT(t)
	trust := sl.file("trust.json")
	states := t.TempDir()
	monitor := func(state string, filter ...string) []certLine {
		t.Helper()
		out, _ := sl.vesper(t, 0, append([]string{"monitor", "-trust", trust, "-log", "stict", "-state", filepath.Join(states, state), "-once"}, filter...)...)
		var lines []certLine
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var c certLine
			if err := json.Unmarshal([]byte(l), &c); err != nil {
				t.Fatalf("monitor line %q: %v", l, err)
			}
			lines = append(lines, c)
		}
		return lines
	}
	summary := func(ls []certLine) string {
		var s []string
		for _, l := range ls {
			s = append(s, fmt.Sprintf("%s:%d", l.Type[:4], l.Index))
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		state  string
		filter []string
		want   string
	}{
		{"all", nil, "cert:0 prec:1 cert:2"},
		{"tn in the range", []string{"-tn", "12025550142"}, "cert:0 prec:1"},
		{"tn at the range's end", []string{"-tn", "12025550199"}, "cert:0 prec:1"},
		{"tn just past it", []string{"-tn", "12025550200"}, ""},
		{"single tn", []string{"-tn", "18001231234"}, "cert:0 prec:1"},
		{"range overlapping", []string{"-tn-range", "12025550190,20"}, "cert:0 prec:1"},
		{"range over the single tn", []string{"-tn-range", "18001231200,100"}, "cert:0 prec:1"},
		{"range outside", []string{"-tn-range", "12025550200,20"}, ""},
		{"spc", []string{"-spc", "1234"}, "cert:2"},
		{"other spc", []string{"-spc", "1235"}, ""},
		{"tn and spc", []string{"-tn", "12025550142", "-spc", "1234"}, ""},
	} {
		if got := summary(monitor(c.state, c.filter...)); got != c.want {
			t.Errorf("monitor %v: %q, want %q", c.filter, got, c.want)
		}
	}

	// A line says what the certificate is.
	ls := monitor("detail")
	for i, c := range []*stitest.Cert{sl.pki.TN, sl.pki.Precert, sl.pki.SPC} {
		sum := sha256.Sum256(c.DER)
		l := ls[i]
		if l.SHA256 != hex.EncodeToString(sum[:]) || l.Serial != c.Cert.SerialNumber.Text(16) || l.Subject != c.Cert.Subject.String() ||
			l.Issuer != sl.pki.Intermediate.Cert.Subject.String() || !l.NotAfter.Equal(c.Cert.NotAfter) || time.Since(l.LogTime) > time.Minute {
			t.Errorf("line %d: %+v", i, l)
		}
	}
	if ls[0].TNAuthList != "range:12025550100+100 tn:18001231234" || ls[2].TNAuthList != "spc:1234" {
		t.Errorf("TNAuthLists: %q, %q", ls[0].TNAuthList, ls[2].TNAuthList)
	}

	// The next run prints only what is new.
	another, err := sl.pki.NewTN("another TN certificate")
	if err != nil {
		t.Fatal(err)
	}
	sl.add(t, another, false)
	if got := summary(monitor("tn in the range", "-tn", "12025550142")); got != "cert:3" {
		t.Errorf("new entries: %q", got)
	}
	if got := summary(monitor("spc", "-spc", "1234")); got != "" {
		t.Errorf("new entries for the SPC: %q", got)
	}

	// Filters are checked before anything is read.
	for _, args := range [][]string{
		{"-tn", "+12025550142"},
		{"-tn", "1202555014212345"},
		{"-tn-range", "12025550100"},
		{"-tn-range", "12025550100,0"},
		{"-tn-range", "1202555#100,10"},
		{"-spc", "12 34"},
		{"-agent", "abc"},
	} {
		_, errs := sl.vesper(t, 2, append([]string{"monitor", "-trust", trust, "-log", "stict", "-state", filepath.Join(states, "usage")}, args...)...)
		if !strings.Contains(errs, "(vesper monitor -h for help)") || strings.Count(errs, "\n") != 1 {
			t.Errorf("monitor %v: %s", args, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(states, "usage")); err == nil {
		t.Error("a refused monitor moved the trusted state")
	}
}

// TestSTICTProof: checkpoint and proof read the STI-CT log too; its leaf
// hash is the MerkleTreeLeaf's.
func TestSTICTProof(t *testing.T) {
	sl := startSTICT(t)
	trust := sl.file("trust.json")
	out, _ := sl.vesper(t, 0, "checkpoint", "-trust", trust, "-log", "stict")
	if !strings.Contains(out, "example.test/stict\nsize 3\n") {
		t.Fatalf("checkpoint: %s", out)
	}
	out, _ = sl.vesper(t, 0, "proof", "inclusion", "-trust", trust, "-log", "stict", "-index", "1")
	b, err := os.ReadFile(filepath.Join(sl.dir, "tile", "data", "000.p", "3"))
	if err != nil {
		t.Fatal(err)
	}
	leaves, _ := stict.SplitTile(b)
	leaf, _, _ := stict.ParseTileLeaf(leaves[1])
	h := leaf.LeafHash()
	if !strings.Contains(out, "entry 1 (leaf hash "+base64.StdEncoding.EncodeToString(h)+") is in the tree of size 3") {
		t.Fatalf("proof inclusion: %s", out)
	}
	out, _ = sl.vesper(t, 0, "proof", "inclusion", "-trust", trust, "-log", "stict", "-leaf-hash", base64.StdEncoding.EncodeToString(h))
	if !strings.Contains(out, "entry 1 ") {
		t.Fatalf("proof by leaf hash: %s", out)
	}
	sl.vesper(t, 1, "checkpoint", "-trust", trust, "-log", "nosuch")
}
