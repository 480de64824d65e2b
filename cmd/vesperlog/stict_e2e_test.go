package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// The STI-CT log's end-to-end tests: the real vesperlog binary, driven by
// certificate-transparency-go's ctclient (an independent RFC 6962 client),
// by plain HTTP, and witnessed by vesperwitness.

// stictPKI generates a test PKI and writes it, as PEM files, to dir/pki.
func stictPKI(t *testing.T, dir string) *stitest.PKI {
	t.Helper()
	p, err := stitest.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	return p
}

// catFiles writes the concatenation of the files in dir to dir/out, as
// `cat a.pem b.pem > out` would (how a user builds a chain for ctclient).
func catFiles(t *testing.T, dir, out string, in ...string) string {
	t.Helper()
	var b []byte
	for _, f := range in {
		c, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, c...)
	}
	if err := os.WriteFile(filepath.Join(dir, out), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, out)
}

func writePEMChain(t *testing.T, path string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stictPublicKey reads the log's public key as the binary wrote it for CT
// tools, and returns it with its RFC 6962 log ID.
func stictPublicKey(t *testing.T, dir string) (crypto.PublicKey, [32]byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "keys", "stict-p256.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stict-p256.pub.pem is not one PUBLIC KEY block:\n%s", b)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub, sha256.Sum256(blk.Bytes)
}

// httpDo makes a request, with further header fields given as name,
// value pairs, and returns the response and its body.
func httpDo(t *testing.T, method, u, ctype string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 40 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func httpGet200(t *testing.T, u string) []byte {
	t.Helper()
	resp, b := httpDo(t, "GET", u, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

// addChain posts chain to the log's add-chain (or add-pre-chain) at base
// (".../stict/v1/" or ".../stict/ct/v1/") and returns the SCT.
func addChain(t *testing.T, base string, chain [][]byte, precert bool) *ct.SignedCertificateTimestamp {
	t.Helper()
	path := "add-chain"
	if precert {
		path = "add-pre-chain"
	}
	body, _ := json.Marshal(ct.AddChainRequest{Chain: chain})
	resp, b := httpDo(t, "POST", base+path, "application/json", body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", base+path, resp.StatusCode, b)
	}
	var r ct.AddChainResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	sct, err := r.ToSignedCertificateTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	return sct
}

func sctBytes(t *testing.T, sct *ct.SignedCertificateTimestamp) []byte {
	t.Helper()
	b, err := cttls.Marshal(*sct)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leafIndexExtension is static-ct-api's leaf_index CtExtension (type 0,
// length 5, uint40 index), as an SCT carries it.
func leafIndexExtension(i uint64) []byte {
	return []byte{0, 0, 5, byte(i >> 32), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// x509Leaf is the MerkleTreeLeaf the log must hold for a certificate and
// its SCT.
func x509Leaf(der []byte, sct *ct.SignedCertificateTimestamp) *ct.MerkleTreeLeaf {
	l := ct.CreateX509MerkleTreeLeaf(ct.ASN1Cert{Data: der}, sct.Timestamp)
	l.TimestampedEntry.Extensions = sct.Extensions
	return l
}

func leafHash(t *testing.T, l *ct.MerkleTreeLeaf) []byte {
	t.Helper()
	b, err := cttls.Marshal(*l)
	if err != nil {
		t.Fatal(err)
	}
	return rfc6962.DefaultHasher.HashLeaf(b)
}

func getSTH(t *testing.T, u string, pub crypto.PublicKey) *ct.SignedTreeHead {
	t.Helper()
	var r ct.GetSTHResponse
	if err := json.Unmarshal(httpGet200(t, u), &r); err != nil {
		t.Fatal(err)
	}
	sth, err := r.ToSignedTreeHead()
	if err != nil {
		t.Fatal(err)
	}
	sv, err := ct.NewSignatureVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.VerifySTHSignature(*sth); err != nil {
		t.Fatalf("STH signature from %s: %v", u, err)
	}
	return sth
}

// eventually polls f (every 100 ms, for at most timeout) until it reports
// done, and fails the test with f's last word otherwise.
func eventually(t *testing.T, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, last := f()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last: %s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stictConfiguration(t *testing.T, srvURL string) (*receipts.Configuration, receipts.LogConfiguration) {
	t.Helper()
	c, err := receipts.ParseConfiguration(httpGet200(t, srvURL+"/.well-known/transparency-configuration"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Logs {
		if l.Name == "stict" {
			return c, l
		}
	}
	t.Fatalf("the transparency configuration does not list the stict log: %+v", c.Logs)
	return nil, receipts.LogConfiguration{}
}

// ctclient runs certificate-transparency-go's ctclient against one log.
type ctclient struct {
	bin, uri, pub string
}

// run runs a ctclient subcommand and returns its stdout, stderr and error.
func (c ctclient) run(t *testing.T, sub string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{sub, "--log_uri", c.uri, "--pub_key", c.pub}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// ok runs a subcommand that must exit 0 and returns its stdout.
func (c ctclient) ok(t *testing.T, sub string, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, sub, args...)
	if err != nil {
		t.Fatalf("ctclient %s %s: %v\nstdout: %s\nstderr: %s", sub, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs a subcommand that must exit non-zero and returns its output.
func (c ctclient) fails(t *testing.T, sub string, args ...string) string {
	t.Helper()
	out, errOut, err := c.run(t, sub, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("ctclient %s %s: %v, want a non-zero exit\nstdout: %s\nstderr: %s", sub, strings.Join(args, " "), err, out, errOut)
	}
	return out + errOut
}

// uploaded is what ctclient upload prints about the SCT it verified.
type uploaded struct {
	certs      int
	timestamp  uint64
	logID      string // hex
	leafHash   string // hex
	extensions string // hex
	signature  string // hex, the DigitallySigned's signature value
}

var uploadRE = regexp.MustCompile(`(?s)Uploaded chain of (\d+) certs to V1 log at \S+, timestamp: (\d+) .*\nLogID: ([0-9a-f]{64})\nLeafHash: ([0-9a-f]{64})\nExtensions: ([0-9a-f]+|\(nil\))\nSignature: Signature: Hash=SHA256 Sign=ECDSA Value=([0-9a-f]+)\n`)

func (c ctclient) upload(t *testing.T, chainFile string) (uploaded, string) {
	t.Helper()
	out := c.ok(t, "upload", "--cert_chain", chainFile)
	m := uploadRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ctclient upload %s printed:\n%s", chainFile, out)
	}
	n, _ := strconv.Atoi(m[1])
	ts, _ := strconv.ParseUint(m[2], 10, 64)
	return uploaded{certs: n, timestamp: ts, logID: m[3], leafHash: m[4], extensions: m[5], signature: m[6]}, out
}

var sthRE = regexp.MustCompile(`Got STH for V1 log \(size=(\d+)\) at \S+, hash ([0-9a-f]{64})\nSignature: Hash=SHA256 Sign=ECDSA`)

func (c ctclient) sth(t *testing.T) (uint64, string) {
	t.Helper()
	out := c.ok(t, "get-sth")
	m := sthRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ctclient get-sth printed:\n%s", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n, m[2]
}

// inclusion runs get-inclusion-proof until it succeeds (the log finds an
// entry by its leaf hash a few seconds after its SCT), and checks that
// ctclient verified the proof of entry index against the current STH.
func (c ctclient) inclusion(t *testing.T, index uint64, hash string, args ...string) {
	t.Helper()
	out := c.inclusionProof(t, index, args...)
	if !strings.Contains(out, "Verified that hash "+hash+" + proof = root hash ") {
		t.Fatalf("get-inclusion-proof %s: ctclient did not verify hash %s:\n%s", strings.Join(args, " "), hash, out)
	}
}

var auditPathRE = regexp.MustCompile(`(?m)^  ([0-9a-f]{64})$`)

// inclusionAt is inclusion at a given tree size (--size), where ctclient
// fetches no STH and so verifies nothing: the test verifies the printed
// proof against root.
func (c ctclient) inclusionAt(t *testing.T, index, size uint64, hash string, root []byte, args ...string) {
	t.Helper()
	out := c.inclusionProof(t, index, append(args, "--size", fmt.Sprint(size))...)
	if !strings.Contains(out, fmt.Sprintf("in tree of size %d:", size)) || strings.Contains(out, "Verified") {
		t.Fatalf("get-inclusion-proof --size %d:\n%s", size, out)
	}
	var path [][]byte
	for _, m := range auditPathRE.FindAllStringSubmatch(out, -1) {
		h, _ := hex.DecodeString(m[1])
		path = append(path, h)
	}
	lh, _ := hex.DecodeString(hash)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, lh, path, root); err != nil {
		t.Fatalf("get-inclusion-proof --size %d printed a proof that does not verify: %v\n%s", size, err, out)
	}
}

func (c ctclient) inclusionProof(t *testing.T, index uint64, args ...string) string {
	t.Helper()
	var out string
	eventually(t, 20*time.Second, "ctclient get-inclusion-proof "+strings.Join(args, " "), func() (bool, string) {
		o, e, err := c.run(t, "get-inclusion-proof", args...)
		out = o
		return err == nil, o + e
	})
	if !regexp.MustCompile(fmt.Sprintf(`Inclusion proof for index %d in tree of size \d+:`, index)).MatchString(out) {
		t.Fatalf("get-inclusion-proof %s: want entry %d:\n%s", strings.Join(args, " "), index, out)
	}
	return out
}

// pemCerts returns the DER of every CERTIFICATE block in s.
func pemCerts(s string) [][]byte {
	var out [][]byte
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
}

func sameDERs(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// startSTICT starts vesperlog with the STI-CT log on, its roots the PKI's.
func startSTICT(t *testing.T, bin, dir string, args ...string) (*running, ctclient) {
	t.Helper()
	srv := startServer(t, bin, dir, append([]string{"-stict-roots", "pki/root.pem"}, args...)...)
	return srv, ctclient{uri: srv.url + "/stict", pub: filepath.Join(dir, "data", "keys", "stict-p256.pub.pem")}
}

// TestSTICTCTClient drives the STI-CT log of the real binary with
// ctclient: upload (add-chain, SCT verified with the log's key), get-sth
// (signature verified), get-roots, get-entries, get-inclusion-proof (by
// leaf hash and by chain, timestamp and extensions) and
// get-consistency-proof (both verified), and checks a refusal reaches it as
// the log's 400 problem. It runs on each backend.
func TestSTICTCTClient(t *testing.T) {
	ctbin := interopTool(t, "ctclient")
	bin, _ := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testSTICTCTClient(t, be, bin, ctbin) })
}

func testSTICTCTClient(t *testing.T, be *backend, bin, ctbin string) {
	dir := t.TempDir()
	p := stictPKI(t, dir)
	srv, c := be.startSTICT(t, bin, dir)
	c.bin = ctbin
	pub, logID := stictPublicKey(t, dir)
	pkiDir := filepath.Join(dir, "pki")

	// The trust document lists the log with its static-ct-api (0x05) vkey,
	// which names the same key as the PEM file.
	_, lc := stictConfiguration(t, srv.url)
	vk := strings.SplitN(lc.VKey, "+", 3)
	if len(vk) != 3 || vk[0] != lc.Origin || !strings.HasSuffix(lc.Origin, "/stict") {
		t.Fatalf("stict vkey %q, origin %q", lc.VKey, lc.Origin)
	}
	if kb, err := base64.StdEncoding.DecodeString(vk[2]); err != nil || len(kb) < 2 || kb[0] != 0x05 {
		t.Fatalf("stict vkey %q is not an RFC 6962 (0x05) key", lc.VKey)
	} else if spki := kb[1:]; sha256.Sum256(spki) != logID {
		t.Fatalf("the vkey's key is not the one in stict-p256.pub.pem")
	}

	// get-roots: exactly the root given with -stict-roots.
	if roots := pemCerts(c.ok(t, "get-roots", "--text=false")); !sameDERs(roots, [][]byte{p.Root.DER}) {
		t.Fatalf("get-roots: %d certificates, want the root", len(roots))
	}
	if out := c.ok(t, "get-roots"); !strings.Contains(out, "CN=STI Test Root CA") {
		t.Fatalf("get-roots (text):\n%s", out)
	}

	// upload (add-chain) of TN and SPC certificate chains, built as a user
	// would: cat leaf.pem intermediate.pem.
	tnChain := catFiles(t, pkiDir, "tn-chain.pem", "tn.pem", "intermediate.pem")
	spcChain := catFiles(t, pkiDir, "spc-chain.pem", "spc.pem", "intermediate.pem")
	critChain := catFiles(t, pkiDir, "critical-chain.pem", "critical-tnauthlist.pem", "intermediate.pem")
	var ups []uploaded
	var h1 string
	for i, chain := range []string{tnChain, spcChain, critChain} {
		up, out := c.upload(t, chain)
		if strings.Contains(out, "pre-certificate") || up.certs != 2 || up.logID != hex.EncodeToString(logID[:]) {
			t.Fatalf("upload %s:\n%s", chain, out)
		}
		// The SCT carries static-ct-api's leaf_index extension.
		if want := hex.EncodeToString(leafIndexExtension(uint64(i))); up.extensions != want {
			t.Fatalf("upload %s: extensions %s, want %s (leaf_index %d)", chain, up.extensions, want, i)
		}
		// ctclient's leaf hash is the one the log must have hashed.
		der := [][]byte{p.TN.DER, p.SPC.DER, p.CriticalTNAuthList.DER}[i]
		exts, _ := hex.DecodeString(up.extensions)
		want := leafHash(t, x509Leaf(der, &ct.SignedCertificateTimestamp{Timestamp: up.timestamp, Extensions: exts}))
		if up.leafHash != hex.EncodeToString(want) {
			t.Fatalf("upload %s: leaf hash %s, want %x", chain, up.leafHash, want)
		}
		ups = append(ups, up)
		// The SCT comes once a published checkpoint covers the entry.
		size, hash := c.sth(t)
		if size != uint64(i+1) {
			t.Fatalf("get-sth after %d uploads: size %d", i+1, size)
		}
		if i == 0 {
			h1 = hash
		}
	}
	// The same chain again: the same entry, and a byte-identical SCT.
	if again, _ := c.upload(t, tnChain); again != ups[0] {
		t.Fatalf("re-upload: %+v, first %+v", again, ups[0])
	}
	size, h3 := c.sth(t)
	if size != 3 {
		t.Fatalf("get-sth after a re-upload: size %d, want 3", size)
	}

	// get-sth at both paths, and the static-ct-api checkpoint, are one tree head.
	sth := getSTH(t, srv.url+"/stict/v1/get-sth", pub)
	sth2 := getSTH(t, srv.url+"/stict/ct/v1/get-sth", pub)
	if sth.TreeSize != 3 || hex.EncodeToString(sth.SHA256RootHash[:]) != h3 || sth2.TreeSize != 3 || sth2.SHA256RootHash != sth.SHA256RootHash {
		t.Fatalf("get-sth: %d %x and %d %x, ctclient saw 3 %s", sth.TreeSize, sth.SHA256RootHash, sth2.TreeSize, sth2.SHA256RootHash, h3)
	}
	if sth.Timestamp < ups[2].timestamp {
		t.Fatalf("the STH covering entry 2 is dated %d, before its SCT (%d)", sth.Timestamp, ups[2].timestamp)
	}
	lv, err := policy.NewLogVerifier(lc.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cpText := httpGet200(t, srv.url+"/stict/checkpoint")
	n, err := note.Open(cpText, note.VerifierList(lv))
	if err != nil {
		t.Fatalf("static-ct-api checkpoint does not verify with the published vkey: %v\n%s", err, cpText)
	}
	if want := fmt.Sprintf("%s\n3\n%s\n", lc.Origin, base64.StdEncoding.EncodeToString(sth.SHA256RootHash[:])); n.Text != want {
		t.Fatalf("checkpoint %q, want %q", n.Text, want)
	}
	fp := sha256.Sum256(p.Intermediate.DER)
	if b := httpGet200(t, fmt.Sprintf("%s/stict/issuer/%x", srv.url, fp)); !bytes.Equal(b, p.Intermediate.DER) {
		t.Fatal("issuer/ does not serve the intermediate")
	}

	// get-entries gives back what was uploaded, with the chain up to the root.
	entries := pemCerts(c.ok(t, "get-entries", "--first", "0", "--last", "2", "--text=false", "--chain"))
	want := [][]byte{p.TN.DER, p.Intermediate.DER, p.Root.DER, p.SPC.DER, p.Intermediate.DER, p.Root.DER, p.CriticalTNAuthList.DER, p.Intermediate.DER, p.Root.DER}
	if !sameDERs(entries, want) {
		t.Fatalf("get-entries --chain: %d certificates, not the three chains uploaded", len(entries))
	}
	out := c.ok(t, "get-entries", "--first", "1")
	if !strings.Contains(out, fmt.Sprintf("Index=1 Timestamp=%d ", ups[1].timestamp)) || !strings.Contains(out, "Extensions="+ups[1].extensions+" X.509 certificate:") ||
		!strings.Contains(out, "CN=STI SPC certificate") {
		t.Fatalf("get-entries --first 1:\n%s", out)
	}

	// get-inclusion-proof, verified by ctclient against the STH it fetches:
	// by leaf hash, and from the chain with the SCT's timestamp and extensions.
	c.inclusion(t, 0, ups[0].leafHash, "--leaf_hash", ups[0].leafHash)
	c.inclusion(t, 2, ups[2].leafHash, "--cert_chain", critChain, "--timestamp", fmt.Sprint(ups[2].timestamp), "--extensions", ups[2].extensions)
	c.inclusionAt(t, 1, 3, ups[1].leafHash, sth.SHA256RootHash[:], "--cert_chain", spcChain, "--timestamp", fmt.Sprint(ups[1].timestamp), "--extensions", ups[1].extensions)
	// Without the extensions the leaf hash is not the logged one.
	if out := c.fails(t, "get-inclusion-proof", "--cert_chain", spcChain, "--timestamp", fmt.Sprint(ups[1].timestamp)); !strings.Contains(out, "status=404") {
		t.Fatalf("inclusion proof without the SCT's extensions:\n%s", out)
	}

	// get-consistency-proof from size 1 to 3, verified by ctclient; and
	// refused with a wrong old root.
	out = c.ok(t, "get-consistency-proof", "--prev_size", "1", "--prev_hash", h1, "--size", "3", "--tree_hash", h3)
	if !strings.Contains(out, fmt.Sprintf("Verified that hash %s @1 + proof = hash %s @3", h1, h3)) {
		t.Fatalf("get-consistency-proof:\n%s", out)
	}
	if out := c.fails(t, "get-consistency-proof", "--prev_size", "1", "--prev_hash", h3, "--size", "3", "--tree_hash", h3); !strings.Contains(out, "Failed to VerifyConsistency") {
		t.Fatalf("consistency with a wrong old root:\n%s", out)
	}

	// A refused chain reaches ctclient as the log's 400 problem.
	untrusted := filepath.Join(pkiDir, "untrusted.pem")
	if out := c.fails(t, "upload", "--cert_chain", untrusted); !strings.Contains(out, "status=400") || !strings.Contains(out, "does not verify to an accepted STI root") {
		t.Fatalf("upload of an untrusted certificate:\n%s", out)
	}
	if size, _ := c.sth(t); size != 3 {
		t.Fatalf("size %d after a refusal, want 3", size)
	}
}

// TestSTICTPrecertFlow: precertificates, one signed by the CA and one by
// its Precertificate Signing Certificate, are uploaded with ctclient (to
// add-pre-chain); their SCTs are embedded in the final certificates, which
// a standard verifier (ctutil.VerifySCT) accepts and ctclient uploads in
// turn; get-entries and get-inclusion-proof see all four entries.
func TestSTICTPrecertFlow(t *testing.T) {
	ctbin := interopTool(t, "ctclient")
	bin, _ := binaries(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	srv, c := startSTICT(t, bin, dir)
	c.bin = ctbin
	pub, logID := stictPublicKey(t, dir)
	pkiDir := filepath.Join(dir, "pki")
	v1 := srv.url + "/stict/v1/"

	issuerKeyHash := sha256.Sum256(p.Intermediate.Cert.RawSubjectPublicKeyInfo)
	ctChain := func(ders ...[]byte) []*ctx509.Certificate {
		var out []*ctx509.Certificate
		for _, d := range ders {
			c, err := ctx509.ParseCertificate(d)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}

	type flow struct {
		name      string
		precert   *stitest.Cert
		chainFile string
		up        uploaded
		sct       *ct.SignedCertificateTimestamp
		final     *stitest.Cert
	}
	flows := []*flow{
		{name: "precert", precert: p.Precert, chainFile: catFiles(t, pkiDir, "precert-chain.pem", "precert.pem", "intermediate.pem")},
		{name: "delegated precert", precert: p.DelegatedPrecert,
			chainFile: catFiles(t, pkiDir, "delegated-chain.pem", "delegated-precert.pem", "precert-signer.pem", "intermediate.pem")},
	}
	for i, f := range flows {
		// ctclient sees the poison and submits to add-pre-chain; it verifies
		// the SCT over the precertificate's TBS and issuer key hash.
		up, out := c.upload(t, f.chainFile)
		if !strings.Contains(out, "Uploading pre-certificate to log") || up.logID != hex.EncodeToString(logID[:]) ||
			up.extensions != hex.EncodeToString(leafIndexExtension(uint64(i))) {
			t.Fatalf("%s: upload:\n%s", f.name, out)
		}
		f.up = up
		// The same chain posted directly: the same entry and SCT.
		f.sct = addChain(t, v1, p.Chain(f.precert), true)
		if f.sct.Timestamp != up.timestamp || hex.EncodeToString(f.sct.Extensions) != up.extensions ||
			hex.EncodeToString(f.sct.Signature.Signature) != up.signature || f.sct.LogID.KeyID != logID {
			t.Fatalf("%s: add-pre-chain SCT %+v, ctclient's %+v", f.name, f.sct, up)
		}
		// The CA embeds the SCT list (RFC 6962 §3.3) in the final certificate.
		list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sctBytes(t, f.sct)}}})
		if err != nil {
			t.Fatal(err)
		}
		if f.final, err = p.Finalize(f.precert, list); err != nil {
			t.Fatal(err)
		}
		if err := ctutil.VerifySCT(pub, ctChain(f.final.DER, p.Intermediate.DER), f.sct, true); err != nil {
			t.Fatalf("%s: embedded SCT does not verify: %v", f.name, err)
		}
		if ok, err := ctutil.ContainsSCT(ctChain(f.final.DER)[0], f.sct); !ok || err != nil {
			t.Fatalf("%s: final certificate does not carry the SCT: %v", f.name, err)
		}
	}
	// The verification can fail: one final certificate with the other's SCT.
	if err := ctutil.VerifySCT(pub, ctChain(flows[1].final.DER, p.Intermediate.DER), flows[0].sct, true); err == nil {
		t.Fatal("an SCT verified for another certificate")
	}

	// The final certificates go to add-chain.
	for i, f := range flows {
		file := writePEMChain(t, filepath.Join(dir, fmt.Sprintf("final-%d.pem", i)), f.final.DER, p.Intermediate.DER)
		up, out := c.upload(t, file)
		if strings.Contains(out, "pre-certificate") || up.extensions != hex.EncodeToString(leafIndexExtension(uint64(2+i))) {
			t.Fatalf("%s: upload of the final certificate:\n%s", f.name, out)
		}
	}
	if size, _ := c.sth(t); size != 4 {
		t.Fatalf("tree size %d, want 4", size)
	}

	// get-entries: two precertificate entries (as submitted, issuer key hash
	// the CA's even when delegated), then the two final certificates.
	out := c.ok(t, "get-entries", "--first", "0", "--last", "3", "--text=false")
	if got := pemCerts(out); !sameDERs(got, [][]byte{p.Precert.DER, p.DelegatedPrecert.DER, flows[0].final.DER, flows[1].final.DER}) {
		t.Fatalf("get-entries: %d certificates, not the four submitted\n%s", len(got), out)
	}
	if n := strings.Count(out, fmt.Sprintf("pre-certificate from issuer with keyhash %x:", issuerKeyHash)); n != 2 {
		t.Fatalf("get-entries: %d precertificate entries of the CA's key, want 2\n%s", n, out)
	}
	if n := strings.Count(out, "X.509 certificate:"); n != 2 {
		t.Fatalf("get-entries: %d certificate entries, want 2\n%s", n, out)
	}

	// get-inclusion-proof from each precertificate chain (ctclient rebuilds
	// the precertificate leaf, delegated too) with the SCT's timestamp and
	// extensions.
	for i, f := range flows {
		c.inclusion(t, uint64(i), f.up.leafHash, "--cert_chain", f.chainFile, "--timestamp", fmt.Sprint(f.up.timestamp), "--extensions", f.up.extensions)
	}
}

// TestSTICTRestartAndRefusals: bad chains get a 400 problem and leave the
// log as it was; after a restart on another port without -stict-origin the
// log keeps its origin and key, refuses a conflicting -stict-origin, and
// answers a resubmission with the byte-identical SCT. It runs on each
// backend (on aws the restart is on the same database and bucket).
func TestSTICTRestartAndRefusals(t *testing.T) {
	bin, _ := binaries(t)
	forEachBackend(t, func(t *testing.T, be *backend) { testSTICTRestartAndRefusals(t, be, bin) })
}

func testSTICTRestartAndRefusals(t *testing.T, be *backend, bin string) {
	dir := t.TempDir()
	p := stictPKI(t, dir)
	const origin = "e2e.test/stict"
	srv, _ := be.startSTICT(t, bin, dir, "-stict-origin", origin)
	pub, _ := stictPublicKey(t, dir)
	pubPEM, _ := os.ReadFile(filepath.Join(dir, "data", "keys", "stict-p256.pub.pem"))

	first := addChain(t, srv.url+"/stict/v1/", p.Chain(p.TN), false)
	if !bytes.Equal(first.Extensions, leafIndexExtension(0)) {
		t.Fatalf("first SCT's extensions %x", first.Extensions)
	}
	before := getSTH(t, srv.url+"/stict/v1/get-sth", pub)
	if before.TreeSize != 1 {
		t.Fatalf("tree size %d after one submission", before.TreeSize)
	}

	b64 := func(ders [][]byte) []byte {
		var s []string
		for _, d := range ders {
			s = append(s, `"`+base64.StdEncoding.EncodeToString(d)+`"`)
		}
		return []byte(`{"chain":[` + strings.Join(s, ",") + `]}`)
	}
	for i, c := range []struct {
		name   string
		chain  [][]byte
		detail string
	}{
		{"untrusted chain", p.Chain(p.Untrusted), "does not verify to an accepted STI root"},
		{"no TNAuthList", p.Chain(p.NoTNAuthList), "no TNAuthList"},
		{"malformed TNAuthList", p.Chain(p.BadTNAuthList), "spc is not an IA5String"},
		{"expired", p.Chain(p.Expired), "not valid at this time"},
		{"wrong key usage", p.Chain(p.WrongKeyUsage), "digitalSignature"},
	} {
		// Both API paths refuse alike.
		u := srv.url + []string{"/stict/v1/add-chain", "/stict/ct/v1/add-chain"}[i%2]
		resp, body := httpDo(t, "POST", u, "application/json", b64(c.chain))
		var prob struct{ Title, Detail string }
		if err := json.Unmarshal(body, &prob); err != nil {
			t.Fatalf("%s: %d %s", c.name, resp.StatusCode, body)
		}
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(prob.Detail, c.detail) {
			t.Errorf("%s: %d %s %s, want 400 application/problem+json saying %q", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, c.detail)
		}
	}
	after := getSTH(t, srv.url+"/stict/v1/get-sth", pub)
	if after.TreeSize != before.TreeSize || after.SHA256RootHash != before.SHA256RootHash {
		t.Fatalf("refusals changed the STH: size %d, was %d", after.TreeSize, before.TreeSize)
	}
	// Nothing refused was sequenced either: the next good entry is entry 1.
	second := addChain(t, srv.url+"/stict/ct/v1/", p.Chain(p.SPC), false)
	if !bytes.Equal(second.Extensions, leafIndexExtension(1)) {
		t.Fatalf("the entry after the refusals has extensions %x, want leaf_index 1", second.Extensions)
	}
	sth := getSTH(t, srv.url+"/stict/v1/get-sth", pub)
	if sth.TreeSize != 2 {
		t.Fatalf("tree size %d, want 2", sth.TreeSize)
	}

	// Before stopping, the lookup index finds the last entry.
	lh := leafHash(t, x509Leaf(p.SPC.DER, second))
	var pr ct.GetProofByHashResponse
	eventually(t, 20*time.Second, "get-proof-by-hash of entry 1", func() (bool, string) {
		resp, b := httpDo(t, "GET", fmt.Sprintf("%s/stict/v1/get-proof-by-hash?tree_size=2&hash=%s", srv.url, url.QueryEscape(base64.StdEncoding.EncodeToString(lh))), "", nil)
		return resp.StatusCode == 200 && json.Unmarshal(b, &pr) == nil, fmt.Sprintf("%d %s", resp.StatusCode, b)
	})
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pr.LeafIndex), 2, lh, pr.AuditPath, sth.SHA256RootHash[:]); err != nil || pr.LeafIndex != 1 {
		t.Fatalf("get-proof-by-hash: entry %d: %v", pr.LeafIndex, err)
	}
	srv.stop(t)

	// A start naming another origin for the existing log is refused.
	cmd := exec.Command(bin, be.serverArgs("-addr", "127.0.0.1:0", "-data", "data", "-stict-roots", "pki/root.pem", "-stict-origin", "other.test/stict")...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), `the backend's stict log is "e2e.test/stict"`) {
		t.Fatalf("start with a conflicting -stict-origin: %v\n%s", err, out)
	}

	// Restart on another port, without -stict-origin.
	addr := freeAddr(t)
	srv2, _ := be.startSTICT(t, bin, dir, "-addr", addr)
	if srv2.url == srv.url || srv2.url != "http://"+addr {
		t.Fatalf("restarted at %s (first at %s), want http://%s", srv2.url, srv.url, addr)
	}
	if cp := httpGet200(t, srv2.url+"/stict/checkpoint"); !bytes.HasPrefix(cp, []byte(origin+"\n2\n")) {
		t.Fatalf("checkpoint after restart: %q", cp)
	}
	if _, lc := stictConfiguration(t, srv2.url); lc.Origin != origin || !strings.HasPrefix(lc.VKey, origin+"+") {
		t.Fatalf("after restart the trust document lists %q with %s", lc.Origin, lc.VKey)
	}
	if pubPEM2, _ := os.ReadFile(filepath.Join(dir, "data", "keys", "stict-p256.pub.pem")); !bytes.Equal(pubPEM, pubPEM2) {
		t.Fatal("the log's public key changed across the restart")
	}
	if sth2 := getSTH(t, srv2.url+"/stict/ct/v1/get-sth", pub); sth2.TreeSize != 2 || sth2.SHA256RootHash != sth.SHA256RootHash {
		t.Fatalf("STH after restart: size %d", sth2.TreeSize)
	}
	// The first chain again: the logged entry's SCT, byte for byte.
	again := addChain(t, srv2.url+"/stict/v1/", p.Chain(p.TN), false)
	if !bytes.Equal(sctBytes(t, again), sctBytes(t, first)) {
		t.Fatalf("SCT after restart:\n%+v\nfirst:\n%+v", again, first)
	}
	if err := ctutil.VerifySCT(pub, []*ctx509.Certificate{mustCTCert(t, p.TN.DER)}, again, false); err != nil {
		t.Fatalf("SCT after restart: %v", err)
	}
	if sth3 := getSTH(t, srv2.url+"/stict/v1/get-sth", pub); sth3.TreeSize != 2 {
		t.Fatalf("a resubmission after restart grew the log to %d", sth3.TreeSize)
	}
	srv2.stop(t)
}

func mustCTCert(t *testing.T, der []byte) *ctx509.Certificate {
	t.Helper()
	c, err := ctx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSTICTWitnessed: with a witness policy naming a vesperwitness that
// witnesses the STI-CT log, its checkpoints carry the cosignature, and a
// receipt for a certificate entry verifies offline (receipts.Verify, and
// vesper verify-receipt) under the published trust document, its entry
// being the entry's RFC 6962 MerkleTreeLeaf.
func TestSTICTWitnessed(t *testing.T) {
	bin, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	const origin = "e2e.test/stict"

	srv, w := startWitnessedSTICT(t, bin, wbin, dir, origin)
	stictVKey, wvkey := w.stictVKey, w.vkey
	pub, _ := stictPublicKey(t, dir)
	sct := addChain(t, srv.url+"/stict/v1/", p.Chain(p.TN), false)
	if err := ctutil.VerifySCT(pub, []*ctx509.Certificate{mustCTCert(t, p.TN.DER)}, sct, false); err != nil {
		t.Fatalf("SCT: %v", err)
	}
	// The STH is the log's own signature, cosignatures or not.
	if sth := getSTH(t, srv.url+"/stict/ct/v1/get-sth", pub); sth.TreeSize != 1 {
		t.Fatalf("tree size %d", sth.TreeSize)
	}

	// The receipt, verified offline under the trust document.
	conf, lc := stictConfiguration(t, srv.url)
	if lc.VKey != stictVKey || lc.Endpoints["receipt"] != srv.url+"/stict/v1/receipt/{index}" {
		t.Fatalf("trust document's stict log: %+v", lc)
	}
	trust, err := conf.Trust()
	if err != nil {
		t.Fatal(err)
	}
	var rr stictserver.ReceiptResponse
	if err := json.Unmarshal(httpGet200(t, srv.url+"/stict/v1/receipt/0"), &rr); err != nil || rr.Index != 0 {
		t.Fatalf("receipt/0: %+v %v", rr, err)
	}
	v, err := receipts.Verify(rr.Receipt, trust)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	entry, err := cttls.Marshal(*x509Leaf(p.TN.DER, sct))
	if err != nil {
		t.Fatal(err)
	}
	if v.Origin != origin || v.Index != 0 || !bytes.Equal(v.Entry, entry) {
		t.Fatalf("receipt for entry %d of %s, entry %x; want entry 0 of %s, the certificate's MerkleTreeLeaf", v.Index, v.Origin, v.Entry, origin)
	}
	if !slices.Equal(v.Checkpoint.Cosigners, []string{"w1"}) {
		t.Fatalf("receipt's checkpoint cosigned by %v, want w1", v.Checkpoint.Cosigners)
	}
	// The cosignature, checked with the witness's key alone.
	wv, err := fnote.NewVerifierForCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(v.Receipt.Proof.Checkpoint, note.VerifierList(wv))
	if err != nil || len(n.Sigs) != 1 || n.Sigs[0].Name != "witness.test/w1" || !strings.HasPrefix(n.Text, origin+"\n1\n") {
		t.Fatalf("receipt's checkpoint and the witness key: %v\n%s", err, v.Receipt.Proof.Checkpoint)
	}
	// Without the witness, the receipt does not meet the policy.
	bare := trust
	if bare.Policy, err = policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w9 %s\nquorum w9\n", stictVKey, otherWitnessVKey(t, wbin, dir)))); err != nil {
		t.Fatal(err)
	}
	if _, err := receipts.Verify(rr.Receipt, bare); !errors.Is(err, receipts.ErrCheckpoint) {
		t.Fatalf("receipt under a policy wanting another witness: %v", err)
	}

	// By leaf hash, too.
	lh := leafHash(t, x509Leaf(p.TN.DER, sct))
	eventually(t, 20*time.Second, "receipt-by-hash", func() (bool, string) {
		resp, b := httpDo(t, "GET", srv.url+"/stict/v1/receipt-by-hash?hash="+url.QueryEscape(base64.StdEncoding.EncodeToString(lh)), "", nil)
		if resp.StatusCode != 200 {
			return false, fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		var r stictserver.ReceiptResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if v, err := receipts.Verify(r.Receipt, trust); err != nil || r.Index != 0 || v.Index != 0 {
			t.Fatalf("receipt by hash: index %d: %v", r.Index, err)
		}
		return true, ""
	})

	// vesper verify-receipt, with the trust document pinned by vesper trust.
	runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust.json")
	os.WriteFile(filepath.Join(dir, "stict-receipt.jwt"), []byte(rr.Receipt), 0o644)
	out2 := runVesper(t, cli, dir, 0, "verify-receipt", "-trust", "trust.json", "stict-receipt.jwt")
	for _, want := range []string{"receipt OK: entry 0 of " + origin, `quorum "w1" met by w1`, "inclusion: entry 0"} {
		if !strings.Contains(out2, want) {
			t.Errorf("verify-receipt output lacks %q:\n%s", want, out2)
		}
	}

	// The witness serves the STI-CT checkpoint it cosigned.
	h := sha256.Sum256([]byte(origin))
	if cp := httpGet200(t, w.url+"/"+hex.EncodeToString(h[:])+"/checkpoint"); !bytes.HasPrefix(cp, []byte(origin+"\n1\n")) {
		t.Fatalf("witness's STI-CT checkpoint: %q", cp)
	}
	srv.stop(t)
}

// otherWitnessVKey makes a witness key that cosigned nothing.
func otherWitnessVKey(t *testing.T, wbin, dir string) string {
	t.Helper()
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w9", "-out", filepath.Join(dir, "w9.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`vkey: (\S+)`).FindStringSubmatch(string(out))[1]
}

// TestSTICTOwnWitnesses: a witness that does not know the STI-CT log holds
// up that log alone, and its 503 says which witness refused and why; with
// -stict-witness-policy the STI-CT log gets its own witnesses (here none),
// the trust document carries its policy, and both logs' receipts verify
// offline, each under its own.
func TestSTICTOwnWitnesses(t *testing.T) {
	bin, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	first, _ := startSTICT(t, bin, dir)
	vettingVKey := first.vkey
	first.stop(t)
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w1", "-out", filepath.Join(dir, "w1.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	wvkey := regexp.MustCompile(`vkey: (\S+)`).FindStringSubmatch(string(out))[1]
	// The witness knows the vetting log only.
	if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), vettingVKey).CombinedOutput(); err != nil {
		t.Fatalf("add-log: %v %s", err, out)
	}
	wurl, _ := startWitness(t, wbin, dir, "w1", "127.0.0.1:0")
	os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", wvkey, wurl)), 0o644)
	os.WriteFile(filepath.Join(dir, "none.policy"), []byte("quorum none\n"), 0o644)
	newAgent(t, cli, dir)

	// One policy for both logs: the STI-CT log stalls, and says why.
	srv, _ := startSTICT(t, bin, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "3s")
	body, _ := json.Marshal(ct.AddChainRequest{Chain: p.Chain(p.TN)})
	resp, b := httpDo(t, "POST", srv.url+"/stict/v1/add-chain", "application/json", body)
	var prob struct{ Detail string }
	_ = json.Unmarshal(b, &prob)
	if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(prob.Detail, "witness w1 ("+wurl+") refused") || !strings.Contains(prob.Detail, "404 Not Found") || !strings.Contains(prob.Detail, "unknown log") {
		t.Fatalf("add-chain with a witness that does not know the log: %d %s", resp.StatusCode, b)
	}
	// The vetting log is not held up.
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("A", 42)+"E", "-out", "r0.jwt")
	// A clean stop would wait for the STI-CT entry's checkpoint, which
	// this policy never lets out; the entry is sequenced and durable.
	_ = srv.cmd.Process.Kill()
	_ = srv.cmd.Wait()

	// The STI-CT log with its own policy.
	srv, _ = startSTICT(t, bin, dir, "-witness-policy", "witnesses.policy", "-stict-witness-policy", "none.policy", "-publish-timeout", "10s")
	addChain(t, srv.url+"/stict/v1/", p.Chain(p.TN), false)
	conf, lc := stictConfiguration(t, srv.url)
	if lc.WitnessPolicy == "" || strings.Contains(lc.WitnessPolicy, "witness ") || !strings.Contains(conf.WitnessPolicy, "witness w1 ") {
		t.Fatalf("trust document: top policy %q, STI-CT policy %q", conf.WitnessPolicy, lc.WitnessPolicy)
	}
	var rr stictserver.ReceiptResponse
	if err := json.Unmarshal(httpGet200(t, srv.url+"/stict/v1/receipt/0"), &rr); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stict.jwt"), []byte(rr.Receipt), 0o644)
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	if out := run(0, "verify-receipt", "-trust", "trust.json", "stict.jwt"); !strings.Contains(out, "quorum none") {
		t.Errorf("STI-CT receipt: %s", out)
	}
	if out := run(0, "verify-receipt", "-trust", "trust.json", "r0.jwt"); !strings.Contains(out, `quorum "w1" met by w1`) {
		t.Errorf("vetting receipt: %s", out)
	}
	srv.stop(t)
}

// TestMLDSACheckpoints: with -mldsa-checkpoints both logs also sign each
// checkpoint with an ML-DSA-44 key (tlog-checkpoint's recommendation), the
// trust document names it (mldsa_vkey) and lists it in the policy, and a
// verifier that trusts only the ML-DSA-44 keys verifies the receipts.
func TestMLDSACheckpoints(t *testing.T) {
	bin, cli := binaries(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }
	srv, _ := startSTICT(t, bin, dir, "-mldsa-checkpoints")
	newAgent(t, cli, dir)
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("M", 42)+"E", "-out", "r0.jwt")
	addChain(t, srv.url+"/stict/v1/", p.Chain(p.TN), false)
	var rr stictserver.ReceiptResponse
	if err := json.Unmarshal(httpGet200(t, srv.url+"/stict/v1/receipt/0"), &rr); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stict.jwt"), []byte(rr.Receipt), 0o644)
	conf, _ := stictConfiguration(t, srv.url)
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	for _, r := range []string{"r0.jwt", "stict.jwt"} {
		run(0, "verify-receipt", "-trust", "trust.json", r)
	}

	// Each log's ML-DSA-44 key alone verifies its checkpoints and receipts.
	for _, lc := range conf.Logs {
		if !strings.Contains(lc.MLDSAVKey, "+") || !strings.HasPrefix(lc.MLDSAVKey, lc.Origin+"+") {
			t.Fatalf("log %s: mldsa_vkey %q", lc.Name, lc.MLDSAVKey)
		}
		only, err := policy.ForLog(lc.MLDSAVKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := only.Verify(httpGet200(t, lc.URL+"/checkpoint")); err != nil {
			t.Errorf("log %s's checkpoint under its ML-DSA-44 key alone: %v", lc.Name, err)
		}
		receipt := rr.Receipt
		if lc.Name == "vetting" {
			b, _ := os.ReadFile(filepath.Join(dir, "r0.jwt"))
			receipt = string(b)
		}
		trust, err := conf.Trust()
		if err != nil {
			t.Fatal(err)
		}
		trust.Policy, trust.Policies = only, nil
		if _, err := receipts.Verify(receipt, trust); err != nil {
			t.Errorf("log %s's receipt under its ML-DSA-44 key alone: %v", lc.Name, err)
		}
	}
	srv.stop(t)
	// A restart without the flag keeps the log; its checkpoints lose only
	// the ML-DSA-44 signature.
	srv, _ = startSTICT(t, bin, dir)
	if _, lc := stictConfiguration(t, srv.url); lc.MLDSAVKey != "" {
		t.Errorf("mldsa_vkey without the flag: %q", lc.MLDSAVKey)
	}
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("N", 42)+"E", "-out", "r1.jwt")
	srv.stop(t)
}

// witnessedSTICT is what startWitnessedSTICT set up: the logs' vkeys and
// the witness w1's.
type witnessedSTICT struct {
	vettingVKey, stictVKey string
	vkey, url              string // w1's cosignature vkey and URL
}

// startWitnessedSTICT starts vesperlog with the STI-CT log of origin in
// dir (stictPKI's roots) and a vesperwitness w1 that witnesses both logs
// and is the server's quorum: a first start makes the logs' keys, which
// the witness must know.
func startWitnessedSTICT(t *testing.T, bin, wbin, dir, origin string) (*running, witnessedSTICT) {
	t.Helper()
	first, _ := startSTICT(t, bin, dir, "-stict-origin", origin)
	_, lc := stictConfiguration(t, first.url)
	w := witnessedSTICT{vettingVKey: first.vkey, stictVKey: lc.VKey}
	first.stop(t)
	out, err := exec.Command(wbin, "keygen", "-name", "witness.test/w1", "-out", filepath.Join(dir, "w1.key")).Output()
	if err != nil {
		t.Fatal(err)
	}
	w.vkey = regexp.MustCompile(`vkey: (\S+)`).FindStringSubmatch(string(out))[1]
	for _, vk := range []string{w.vettingVKey, w.stictVKey} {
		if out, err := exec.Command(wbin, "add-log", "-config", filepath.Join(dir, "logs.policy"), vk).CombinedOutput(); err != nil {
			t.Fatalf("add-log %s: %v %s", vk, err, out)
		}
	}
	w.url, _ = startWitness(t, wbin, dir, "w1", "127.0.0.1:0")
	if err := os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", w.vkey, w.url)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, _ := startSTICT(t, bin, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "10s")
	return srv, w
}
