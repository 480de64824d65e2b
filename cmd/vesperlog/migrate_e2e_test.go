package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"
	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/storage/storagetest"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// runCode runs bin in dir and returns its exit code, stdout and stderr.
func runCode(t *testing.T, bin, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// servedCheckpoint reads a log's checkpoint from a server, verified with
// the log's vkey, and returns its size and root.
func servedCheckpoint(t *testing.T, logURL, vkey string) (uint64, []byte) {
	t.Helper()
	v, err := policy.NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(httpGet200(t, logURL+"/checkpoint"), note.VerifierList(v))
	if err != nil {
		t.Fatalf("%s/checkpoint: %v", logURL, err)
	}
	return parseCheckpointText(t, n.Text)
}

// fileCheckpoint reads the size and root of a checkpoint file.
func fileCheckpoint(t *testing.T, path string) (uint64, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(string(b), "\n\n")
	return parseCheckpointText(t, body+"\n")
}

func parseCheckpointText(t *testing.T, text string) (uint64, []byte) {
	t.Helper()
	lines := strings.Split(text, "\n")
	var size uint64
	if _, err := fmt.Sscan(lines[1], &size); err != nil {
		t.Fatalf("checkpoint %q: %v", text, err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		t.Fatalf("checkpoint %q: root: %v", text, err)
	}
	return size, root
}

// awsUntouched checks that nothing was written to the test's aws backend:
// its bucket is empty and its database has no tables and no log databases.
func awsUntouched(t *testing.T, a storagetest.AWS) {
	t.Helper()
	ctx := context.Background()
	c, err := storagetest.S3Client(ctx, a.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(a.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) > 0 {
		t.Errorf("the target bucket has %d objects, the first %s", len(out.Contents), aws.ToString(out.Contents[0].Key))
	}
	cfg, err := mysql.ParseDSN(a.DSN)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", a.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", cfg.DBName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("the target database %s has %d tables", cfg.DBName, n)
	}
	like := strings.ReplaceAll(cfg.DBName, "_", `\_`) + `\_%`
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE ?", like).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("%d log databases %s_* were created", n, cfg.DBName)
	}
}

// TestMigrateEndToEnd: a posix deployment with both logs, an agent, vetting
// statements and STI-CT chains (a precertificate among them) is migrated
// with vesperlog migrate into MariaDB and S3, after refusals that leave the
// target untouched; vesperlog then serves the same logs from aws, with the
// same keys: same roots, old receipts verify against its trust document,
// resubmissions find their old indices, new entries follow, issuers are
// served and an audit of both logs passes.
func TestMigrateEndToEnd(t *testing.T) {
	bin, cli := binaries(t)
	a := storagetest.NewAWS(t)
	target := []string{"-storage", "aws", "-db-dsn", a.DSN, "-s3-bucket", a.Bucket, "-s3-endpoint", a.Endpoint}
	dir := t.TempDir()
	p := stictPKI(t, dir)
	const stictOrigin = "e2e.test/stict"
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	// The posix deployment.
	srv, _ := startSTICT(t, bin, dir, "-stict-origin", stictOrigin)
	newAgent(t, cli, dir)
	os.WriteFile(filepath.Join(dir, "kyc.json"), []byte(`{"legal_name":"Business 42 LLC"}`), 0o644)
	digest := strings.TrimSpace(run(0, "kyc-hash", "-in", "kyc.json", "-out", "commitment.json"))
	if out := run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "receipt.jwt"); !strings.Contains(out, "logged at index 0") {
		t.Fatalf("submit: %s", out)
	}
	var lines []string
	for i := range 4 {
		d := make([]byte, 32)
		copy(d, fmt.Sprintf("migrated digest %d", i))
		lines = append(lines, base64.RawURLEncoding.EncodeToString(d)+fmt.Sprintf(" entity-%d", i))
	}
	os.WriteFile(filepath.Join(dir, "digests.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	if out := run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digests", "digests.txt"); strings.Count(out, "logged at index") != 4 {
		t.Fatalf("batch: %s", out)
	}
	const vettingSize = 5
	v1 := srv.url + "/stict/v1/"
	tnSCT := addChain(t, v1, p.Chain(p.TN), false)
	addChain(t, v1, p.Chain(p.Precert), true)
	addChain(t, v1, p.Chain(p.SPC), false)
	const stictSize = 3
	run(0, "trust", "-server", srv.url, "-out", "trust-posix.json")
	_, stictLC := stictConfiguration(t, srv.url)
	srv.stop(t)
	vettingVKey := srv.vkey

	// Refusals, each leaving the target as it was.
	cpFile := filepath.Join(dir, "data", "vetting", "checkpoint")
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T) func() // returns the undo
		args  []string
		code  int
		want  string
	}{
		{name: "no -from", args: target, code: 2, want: "-from DIR is required"},
		{name: "no -storage", args: []string{"-from", "data"}, code: 2, want: "-storage is required"},
		{name: "aws without a bucket", args: []string{"-from", "data", "-storage", "aws", "-db-dsn", a.DSN}, code: 2, want: "needs -db-dsn and -s3-bucket"},
		{name: "unknown flag", args: append([]string{"-from", "data", "-frm", "x"}, target...), code: 2, want: "flag provided but not defined: -frm"},
		{name: "no such directory", args: append([]string{"-from", "nothere"}, target...), code: 1, want: "no such file or directory"},
		{name: "source locked by a running server", args: append([]string{"-from", "data"}, target...), code: 1, want: "in use by another process",
			setup: func(t *testing.T) func() {
				s, _ := startSTICT(t, bin, dir)
				return func() { s.stop(t) }
			}},
		{name: "tampered source checkpoint", args: append([]string{"-from", "data"}, target...), code: 1, want: "does not verify with the log's key " + vettingVKey,
			setup: func(t *testing.T) func() {
				// A base64 character inside the log's signature.
				i := bytes.LastIndex(cp, []byte("\n— ")) + 1
				j := i + bytes.IndexByte(cp[i:], '\n') - 10
				bad := bytes.Clone(cp)
				bad[j] = map[bool]byte{true: 'B', false: 'A'}[bad[j] == 'A']
				if bytes.Equal(bad, cp) || i == 0 {
					t.Fatalf("checkpoint %q", cp)
				}
				if err := os.WriteFile(cpFile, bad, 0o644); err != nil {
					t.Fatal(err)
				}
				return func() { os.WriteFile(cpFile, cp, 0o644) }
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				defer c.setup(t)()
			}
			code, stdout, stderr := runCode(t, bin, dir, append([]string{"migrate"}, c.args...)...)
			msg := strings.TrimSpace(stderr)
			if code != c.code || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || stdout != "" {
				t.Fatalf("exit %d, want %d saying %q on one line\nstdout: %s\nstderr: %s", code, c.code, c.want, stdout, stderr)
			}
			t.Log(msg)
			awsUntouched(t, a)
		})
	}
	if t.Failed() {
		t.FailNow()
	}

	// The migration.
	vettingSizeFile, vettingRoot := fileCheckpoint(t, cpFile)
	stictSizeFile, stictRoot := fileCheckpoint(t, filepath.Join(dir, "data", "stict", "checkpoint"))
	if vettingSizeFile != vettingSize || stictSizeFile != stictSize {
		t.Fatalf("posix sizes %d and %d", vettingSizeFile, stictSizeFile)
	}
	start := time.Now()
	code, stdout, stderr := runCode(t, bin, dir, append([]string{"migrate", "-from", "data", "-workers", "2"}, target...)...)
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("migrate took %s:\n%s%s", time.Since(start).Round(time.Millisecond), stdout, stderr)
	for _, want := range []string{
		fmt.Sprintf("vetting log e2e.test/vetting: migrated and verified, size %d, root %x\n", vettingSize, vettingRoot),
		fmt.Sprintf("stict log %s: migrated and verified, size %d, root %x\n", stictOrigin, stictSize, stictRoot),
		"state: log-vetting.json, log-stict.json, log-stict-note.json; 1 agents; 1 receipt keys; 2 STI-CT issuers\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stderr, "Here be dragons") || !strings.Contains(stderr, "adds get 503") {
		t.Errorf("migrate stderr:\n%s", stderr)
	}

	// vesperlog on aws, with the same keys (-data data) and no -stict-origin.
	srv2, _ := startSTICT(t, bin, dir, append(target, "-checkpoint-interval", "1s")...)
	if srv2.vkey != vettingVKey {
		t.Fatalf("vetting vkey on aws %s, on posix %s", srv2.vkey, vettingVKey)
	}
	_, lc := stictConfiguration(t, srv2.url)
	if lc.Origin != stictOrigin || lc.VKey != stictLC.VKey {
		t.Fatalf("STI-CT log on aws is %q %s, on posix %q %s", lc.Origin, lc.VKey, stictLC.Origin, stictLC.VKey)
	}
	// Its first checkpoints are the posix log's trees.
	for _, l := range []struct {
		name, vkey string
		size       uint64
		root       []byte
	}{{"vetting", vettingVKey, vettingSize, vettingRoot}, {"stict", lc.VKey, stictSize, stictRoot}} {
		var size uint64
		var root []byte
		eventually(t, 20*time.Second, l.name+" checkpoint on aws", func() (bool, string) {
			resp, b := httpDo(t, "GET", srv2.url+"/"+l.name+"/checkpoint", "", nil)
			if resp.StatusCode != 200 {
				return false, fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
			size, root = servedCheckpoint(t, srv2.url+"/"+l.name, l.vkey)
			return true, ""
		})
		if size != l.size || !bytes.Equal(root, l.root) {
			t.Fatalf("%s on aws: size %d root %x; on posix size %d root %x", l.name, size, root, l.size, l.root)
		}
	}

	// The old receipt verifies against the new server's trust document.
	run(0, "trust", "-server", srv2.url, "-out", "trust-aws.json")
	fetch(t, srv2.url+"/vetting/v1/agents", filepath.Join(dir, "agents.json"))
	out := run(0, "verify-receipt", "-trust", "trust-aws.json", "-agents", "agents.json", "-digest", digest, "receipt.jwt")
	if !strings.Contains(out, "receipt OK: entry 0 of e2e.test/vetting") {
		t.Fatalf("old receipt under the aws trust document: %s", out)
	}

	// The old statement again: its old index, once the dedup store has
	// indexed the migrated log (503 until then).
	var resub string
	eventually(t, 60*time.Second, "resubmission", func() (bool, string) {
		code, o, e := runCode(t, cli, dir, "submit", "-server", srv2.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "receipt2.jwt")
		resub = o
		return code == 0, o + e
	})
	if !strings.Contains(resub, "already logged at index 0") {
		t.Fatalf("resubmission on aws: %s", resub)
	}
	run(0, "verify-receipt", "-trust", "trust-aws.json", "-digest", digest, "receipt2.jwt")
	// A new statement: the next index, and the log grows from the
	// migrated tree.
	d := make([]byte, 32)
	copy(d, "after the move")
	if out := run(0, "submit", "-server", srv2.url, "-key", "va.jwk", "-digest", base64.RawURLEncoding.EncodeToString(d), "-out", "receipt3.jwt"); !strings.Contains(out, fmt.Sprintf("logged at index %d", vettingSize)) {
		t.Fatalf("new statement on aws: %s", out)
	}
	run(0, "verify-receipt", "-trust", "trust-aws.json", "receipt3.jwt")
	size, root := servedCheckpoint(t, srv2.url+"/vetting", vettingVKey)
	if size != vettingSize+1 {
		t.Fatalf("vetting size on aws %d, want %d", size, vettingSize+1)
	}
	u, _ := url.Parse(srv2.url + "/vetting/")
	f, err := tclient.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := tclient.NewProofBuilder(context.Background(), size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := pb.ConsistencyProof(context.Background(), vettingSize, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, vettingSize, size, cons, vettingRoot, root); err != nil {
		t.Fatalf("the aws log is not an extension of the posix one: %v", err)
	}

	// STI-CT: the first chain again gets the byte-identical SCT, a new one
	// the next index; the issuers are served, and both logs audit.
	body, _ := json.Marshal(ct.AddChainRequest{Chain: p.Chain(p.TN)})
	var again ct.AddChainResponse
	eventually(t, 60*time.Second, "STI-CT resubmission", func() (bool, string) {
		resp, b := httpDo(t, "POST", srv2.url+"/stict/v1/add-chain", "application/json", body)
		return resp.StatusCode == 200 && json.Unmarshal(b, &again) == nil, fmt.Sprintf("%d %s", resp.StatusCode, b)
	})
	if sct, err := again.ToSignedCertificateTimestamp(); err != nil || !bytes.Equal(sctBytes(t, sct), sctBytes(t, tnSCT)) {
		t.Fatalf("the first chain again on aws: %+v (%v), on posix %+v", sct, err, tnSCT)
	}
	tn, err := p.NewTN("after the move")
	if err != nil {
		t.Fatal(err)
	}
	if sct := addChain(t, srv2.url+"/stict/v1/", p.Chain(tn), false); !bytes.Equal(sct.Extensions, leafIndexExtension(stictSize)) {
		t.Fatalf("new chain on aws: extensions %x, want leaf_index %d", sct.Extensions, stictSize)
	}
	fp := sha256.Sum256(p.Intermediate.DER)
	if b := httpGet200(t, fmt.Sprintf("%s/stict/issuer/%x", srv2.url, fp)); !bytes.Equal(b, p.Intermediate.DER) {
		t.Fatal("issuer/ on aws does not serve the intermediate")
	}
	run(0, "trust", "-server", srv2.url, "-out", "trust-aws.json")
	if out := run(0, "audit", "-trust", "trust-aws.json", "-log", "stict", "-roots", "pki/root.pem"); !strings.Contains(out, "audit OK") || !strings.Contains(out, "size 4") {
		t.Fatalf("STI-CT audit on aws: %s", out)
	}
	if out := run(0, "audit", "-trust", "trust-aws.json", "-agents", "agents.json"); !strings.Contains(out, "audit OK") {
		t.Fatalf("vetting audit on aws: %s", out)
	}
	srv2.stop(t)
}
