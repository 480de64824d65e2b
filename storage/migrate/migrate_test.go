package migrate

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// testSource is a posix data directory written by the logs' own code.
type testSource struct {
	dir      string
	vetting  [][]byte // the vetting entries, in order
	pki      *stitest.PKI
	signer   *stict.Signer
	receipts *receipts.Signer
	stict    int // STI-CT entries
}

// vettingIdentity is the test vetting log's dedup identity: the entry.
func vettingIdentity(e []byte) ([]byte, error) { return e, nil }

func vettingEntry(i int) []byte { return []byte(fmt.Sprintf("vetting entry %d", i)) }

// writeSource writes a data directory with n vetting entries (so more
// than 256 gives a full and a partial bundle) and three STI-CT entries
// (certificate, precertificate, certificate), as a server stopped cleanly
// leaves it.
func writeSource(t *testing.T, n int) *testSource {
	t.Helper()
	ctx := context.Background()
	s := &testSource{dir: filepath.Join(t.TempDir(), "data")}
	be, err := storage.Open(ctx, storage.Config{Dir: s.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st := be.State()

	ck, _, err := keys.LoadOrCreateNoteKey(filepath.Join(s.dir, "keys", "vetting-checkpoint.key"), "example.test/vetting")
	if err != nil {
		t.Fatal(err)
	}
	if err := state.Bind(ctx, st, VettingLog, state.LogBinding{Origin: ck.Signer.Name(), VKey: ck.VKey}); err != nil {
		t.Fatal(err)
	}
	stores, err := be.Log(ctx, VettingLog)
	if err != nil {
		t.Fatal(err)
	}
	l, err := vlog.Open(ctx, stores.Driver, vlog.Options{Signer: ck.Signer, Format: vlog.TlogTiles(vettingIdentity), Antispam: stores.Antispam, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.vetting = make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, _, _, err := l.Add(ctx, vettingEntry(i))
			if err != nil {
				t.Errorf("add %d: %v", i, err)
				return
			}
			s.vetting[idx] = vettingEntry(i)
		}()
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if s.pki, err = stitest.Generate(time.Now()); err != nil {
		t.Fatal(err)
	}
	sk, _, err := keys.LoadOrCreateJWK(filepath.Join(s.dir, "keys", "stict-p256.jwk"), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if s.signer, err = stict.NewSigner("example.test/stict", sk.Key.(*ecdsa.PrivateKey)); err != nil {
		t.Fatal(err)
	}
	if err := state.Bind(ctx, st, STICTLog, state.LogBinding{Origin: s.signer.Name(), VKey: s.signer.VKey()}); err != nil {
		t.Fatal(err)
	}
	rk, _, err := keys.LoadOrCreateJWK(filepath.Join(s.dir, "keys", "receipt-es256.jwk"), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if s.receipts, err = receipts.NewSigner(rk.Key.(crypto.Signer)); err != nil {
		t.Fatal(err)
	}
	if _, err := state.OpenReceiptKeys(ctx, st, s.receipts.PublicJWK()); err != nil {
		t.Fatal(err)
	}
	svc := s.openSTICT(t, be, 100*time.Millisecond)
	for i, c := range []struct {
		leaf    *stitest.Cert
		precert bool
	}{{s.pki.TN, false}, {s.pki.Precert, true}, {s.pki.SPC, false}} {
		a, err := svc.Add(ctx, s.pki.Chain(c.leaf), c.precert)
		if err != nil || a.Index != uint64(i) {
			t.Fatalf("STI-CT add %d: %+v %v", i, a, err)
		}
	}
	s.stict = 3
	if err := svc.Log().Close(ctx); err != nil {
		t.Fatal(err)
	}

	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ag, err := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: &ak.PublicKey}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ag.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.PutAgents(ctx, st, b); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSTICT starts the STI-CT log of the test PKI on be.
func (s *testSource) openSTICT(t *testing.T, be storage.Backend, interval time.Duration) *stictserver.Service {
	t.Helper()
	roots, err := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.pki.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := stictserver.Open(context.Background(), stictserver.OpenConfig{Storage: be, Signer: s.signer, Roots: roots, Receipts: s.receipts,
		CheckpointInterval: interval, PublishTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// badgerDir says whether p is one of the Badger stores of a posix data
// directory (<log>-antispam, <log>-leafhash): large preallocated files
// that migration never reads.
func badgerDir(root, p string, d fs.DirEntry) bool {
	return d.IsDir() && filepath.Dir(p) == root && strings.Contains(d.Name(), "-")
}

// copyDir copies a source, so that each case may spoil its own.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "data")
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if badgerDir(from, p, d) {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// listFiles lists the files below dir, as a picture of its state.
func listFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && badgerDir(dir, p, d) {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			h := sha256.Sum256(b)
			out[p] = hex.EncodeToString(h[:])
		}
		return nil
	})
	return out
}

// TestBundles: bundles are read partial or full and cut to the tree,
// and an entry that is not where it says is refused.
func TestBundles(t *testing.T) {
	ctx := context.Background()
	var full []byte
	for i := range 5 {
		full = append(full, byte(0), byte(len(vettingEntry(i))))
		full = append(full, vettingEntry(i)...)
	}
	files := map[string][]byte{layout.EntriesPath(0, 0): full}
	read := func(_ context.Context, p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	spec := specs[VettingLog]
	// Size 3: the partial bundle is gone, the full one is cut.
	b, hashes, err := spec.bundle(ctx, read, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := full[:3*(2+len(vettingEntry(0)))]; !bytes.Equal(b, want) || len(hashes) != 3 {
		t.Fatalf("bundle of size 3: %q, %d hashes", b, len(hashes))
	}
	if !bytes.Equal(hashes[2], rfc6962.DefaultHasher.HashLeaf(vettingEntry(2))) {
		t.Fatal("wrong leaf hash")
	}
	// Size 7: the bundle is short.
	if _, _, err := spec.bundle(ctx, read, 0, 7); err == nil || !strings.Contains(err.Error(), "has 5 entries, want 7") {
		t.Fatalf("short bundle: %v", err)
	}
	// A truncated entry.
	files[layout.EntriesPath(0, 0)] = full[:len(full)-1]
	if _, _, err := spec.bundle(ctx, read, 0, 5); err == nil || !strings.Contains(err.Error(), "entry 4 is truncated") {
		t.Fatalf("truncated bundle: %v", err)
	}
	// Missing.
	if _, _, err := spec.bundle(ctx, read, 1, 300); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing bundle: %v", err)
	}

	// Static-ct-api: the leaf_index extension must be the entry's index.
	s := writeSource(t, 1)
	src := &sourceLog{spec: specs[STICTLog], dir: filepath.Join(s.dir, STICTLog)}
	if _, _, err := src.spec.bundle(ctx, src.read, 0, 3); err != nil {
		t.Fatal(err)
	}
	tile, err := src.read(ctx, "tile/data/000.p/3")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.spec.split(tile, 256); err == nil || !strings.Contains(err.Error(), "says it is entry 0, not 256") {
		t.Fatalf("misplaced leaf: %v", err)
	}
}

// posixTarget is a target directory of its own.
func posixTarget(t *testing.T) storage.Config {
	return storage.Config{Backend: storage.POSIX, Dir: filepath.Join(t.TempDir(), "target")}
}

// TestRunPOSIX migrates into another posix directory (the same code path
// as aws and gcp, and no servers needed) and reads the copy as a client
// would.
func TestRunPOSIX(t *testing.T) {
	ctx := context.Background()
	s := writeSource(t, 300)
	// A further checkpoint key's binding, as a server with the STI-CT
	// log's note key writes it: it is copied too.
	note := fmt.Sprintf(`{"origin":%q,"vkey":"the note key's vkey"}`, "example.test/stict")
	if err := os.WriteFile(filepath.Join(s.dir, "log-stict-note.json"), []byte(note), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listFiles(t, s.dir)
	tc := posixTarget(t)
	res, err := Run(ctx, Config{From: s.dir, Target: tc, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, s, res)
	if after := listFiles(t, s.dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("the source directory changed")
	}
	for _, l := range res.Logs {
		// Tessera's own client, on the target's files.
		f := client.FileFetcher{Root: filepath.Join(tc.Dir, l.Name)}
		nodes, err := client.FetchRangeNodes(ctx, l.Size, f.ReadTile)
		if err != nil || len(nodes) == 0 {
			t.Fatalf("%s: %v", l.Name, err)
		}
		pb, err := client.NewProofBuilder(ctx, l.Size, f.ReadTile)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pb.InclusionProof(ctx, l.Size-1); err != nil {
			t.Fatalf("%s: inclusion proof: %v", l.Name, err)
		}
	}
	f := client.FileFetcher{Root: filepath.Join(tc.Dir, VettingLog)}
	for _, n := range []uint64{0, 1} {
		b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, n, 300)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range b.Entries {
			if !bytes.Equal(e, s.vetting[n*256+uint64(i)]) {
				t.Fatalf("entry %d: %q", n*256+uint64(i), e)
			}
		}
	}
	if !slices.Contains(res.Bindings, "log-stict-note.json") {
		t.Errorf("bindings written: %q", res.Bindings)
	}
	for _, name := range []string{"agents.json", "receipt-keys.json", "log-vetting.json", "log-stict.json", "log-stict-note.json"} {
		a, _ := os.ReadFile(filepath.Join(s.dir, name))
		b, err := os.ReadFile(filepath.Join(tc.Dir, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not copied as it was: %v", name, err)
		}
	}
	for _, c := range []*stitest.Cert{s.pki.Intermediate, s.pki.Root} {
		fp := sha256.Sum256(c.DER)
		if b, err := os.ReadFile(filepath.Join(tc.Dir, STICTLog, "issuer", hex.EncodeToString(fp[:]))); err != nil || !bytes.Equal(b, c.DER) {
			t.Errorf("issuer %x not copied: %v", fp, err)
		}
	}
}

func checkResult(t *testing.T, s *testSource, res *Result) {
	t.Helper()
	if len(res.Logs) != 2 || res.Logs[0].Name != VettingLog || res.Logs[1].Name != STICTLog {
		t.Fatalf("logs: %+v", res.Logs)
	}
	for i, want := range []uint64{uint64(len(s.vetting)), uint64(s.stict)} {
		l := res.Logs[i]
		cp, err := os.ReadFile(filepath.Join(s.dir, l.Name, "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		size, err := vlog.CheckpointSize(cp)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Copied || l.Size != want || size != want || len(l.Root) != 32 || !strings.HasPrefix(l.Origin, "example.test/") {
			t.Fatalf("log %+v, want size %d", l, want)
		}
	}
	// The intermediate, the root, and the precertificate's.
	if res.Issuers < 2 || res.Agents != 1 || res.ReceiptKeys != 1 || len(res.Bindings) < 2 {
		t.Fatalf("result %+v", res)
	}
}

// TestLegacySource: a directory from before bindings is verified with its
// key files, and the target gets the bindings a server would have written.
func TestLegacySource(t *testing.T) {
	ctx := context.Background()
	s := writeSource(t, 2)
	dir := copyDir(t, s.dir)
	want := map[string][]byte{}
	for _, n := range []string{"log-vetting.json", "log-stict.json"} {
		want[n], _ = os.ReadFile(filepath.Join(dir, n))
		os.Remove(filepath.Join(dir, n))
	}
	tc := posixTarget(t)
	if _, err := Run(ctx, Config{From: dir, Target: tc}); err != nil {
		t.Fatal(err)
	}
	for n, w := range want {
		if got, err := os.ReadFile(filepath.Join(tc.Dir, n)); err != nil || !bytes.Equal(got, w) {
			t.Errorf("%s: %s, want %s (%v)", n, got, w, err)
		}
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s was written into the source", n)
		}
	}
}

// TestRefusals: a source that does not verify, or a target that holds
// something else, is refused before the target is written.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	s := writeSource(t, 300)
	otherKeyFile := filepath.Join(t.TempDir(), "other.key")
	otherKey, _, err := keys.LoadOrCreateNoteKey(otherKeyFile, "example.test/vetting")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(path string, f func([]byte) []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, path)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	fp := sha256.Sum256(s.pki.Intermediate.DER)
	cases := []struct {
		name string
		// spoil changes the source copy; target, the target directory.
		spoil, target func(t *testing.T, dir string)
		// untouched: the target is not written (a refusal before the copy)
		untouched bool
		want      string
	}{
		{name: "tampered checkpoint signature", untouched: true, want: "does not verify with the log's key",
			spoil: edit("vetting/checkpoint", func(b []byte) []byte {
				i := bytes.LastIndexByte(b[:len(b)-1], '\n')
				sig := []byte(string(b[i+1:]))
				// A base64 character inside the signature.
				sig[len(sig)-10] = map[bool]byte{true: 'B', false: 'A'}[sig[len(sig)-10] == 'A']
				return append(b[:i+1:i+1], sig...)
			})},
		{name: "tampered checkpoint size", untouched: true, want: "does not verify with the log's key",
			spoil: edit("stict/checkpoint", func(b []byte) []byte { return bytes.Replace(b, []byte("\n3\n"), []byte("\n2\n"), 1) })},
		{name: "no binding and no key", untouched: true, want: "cannot verify its checkpoint",
			spoil: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, "log-vetting.json"))
				os.Remove(filepath.Join(dir, "keys", "vetting-checkpoint.key"))
			}},
		{name: "key file not the bound key", untouched: true, want: "its key file has vkey",
			spoil: func(t *testing.T, dir string) {
				b, err := os.ReadFile(otherKeyFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keys", "vetting-checkpoint.key"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "issuer not its hash", untouched: true, want: "does not hash to its name",
			spoil: edit("stict/issuer/"+hex.EncodeToString(fp[:]), func(b []byte) []byte { return s.pki.OtherRoot.DER })},
		{name: "not a data directory", untouched: true, want: "not a vesperlog data directory",
			spoil: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "vetting", "checkpoint")) }},
		{name: "agents.json does not parse", untouched: true, want: "source agents.json",
			spoil: edit("agents.json", func(b []byte) []byte { return []byte(`{"agents": 1}`) })},
		{name: "target bound to another key", untouched: true, want: "the target's vetting log is",
			target: func(t *testing.T, dir string) {
				os.MkdirAll(dir, 0o755)
				os.WriteFile(filepath.Join(dir, "log-vetting.json"), []byte(`{"origin":"example.test/vetting","vkey":"`+otherKey.VKey+`"}`), 0o644)
			}},
		{name: "target has other agents", untouched: true, want: "another agent registry",
			target: func(t *testing.T, dir string) {
				os.MkdirAll(dir, 0o755)
				ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				ag, _ := (&vetting.Agents{}).Add("other", jose.JSONWebKey{Key: &ak.PublicKey}, "")
				b, _ := ag.MarshalJSON()
				os.WriteFile(filepath.Join(dir, "agents.json"), b, 0o644)
			}},
		// Spoiled entries are found by the copy, and end it at once.
		{name: "truncated bundle", want: "entry bundle 1",
			spoil: edit("vetting/tile/entries/001.p/44", func(b []byte) []byte { return b[:len(b)-3] })},
		{name: "altered entry", want: "root hash",
			spoil: edit("vetting/tile/entries/000", func(b []byte) []byte { return bytes.Replace(b, []byte("entry 1"), []byte("entry X"), 1) })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, s.dir)
			if c.spoil != nil {
				c.spoil(t, dir)
			}
			tc := posixTarget(t)
			if c.target != nil {
				c.target(t, tc.Dir)
			}
			before := listFiles(t, tc.Dir)
			done := make(chan struct{})
			var err error
			go func() {
				defer close(done)
				_, err = Run(ctx, Config{From: dir, Target: tc})
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("Run did not return")
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
			t.Log(err)
			after := listFiles(t, tc.Dir)
			delete(after, filepath.Join(tc.Dir, ".lock"))
			if c.untouched && fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the target changed:\n%v\nwas\n%v", after, before)
			}
		})
	}

	t.Run("source locked", func(t *testing.T) {
		dir := copyDir(t, s.dir)
		be, err := storage.Open(ctx, storage.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		tc := posixTarget(t)
		if _, err := Run(ctx, Config{From: dir, Target: tc}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("locked source: %v", err)
		}
		if _, err := os.Stat(tc.Dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the target was created: %v", err)
		}
	})
	t.Run("target is the source", func(t *testing.T) {
		if _, err := Run(ctx, Config{From: s.dir, Target: storage.Config{Dir: s.dir + "/."}}); err == nil || !strings.Contains(err.Error(), "the target is the source") {
			t.Fatalf("same directory: %v", err)
		}
	})
}

// addEventually adds an entry, retrying while the log pushes back (its
// dedup store catching up after the move).
func addEventually(t *testing.T, l *vlog.Log, e []byte) (uint64, bool, []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		idx, dup, cp, err := l.Add(context.Background(), e)
		if err == nil {
			return idx, dup, cp
		}
		if !errors.Is(err, problem.ErrOverloaded) || time.Now().After(deadline) {
			t.Fatalf("add %q: %v", e, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func awsTarget(t *testing.T) storage.Config {
	a := storagetest.NewAWS(t)
	return storage.Config{Backend: storage.AWS, DSN: a.DSN, Bucket: a.Bucket, S3Endpoint: a.Endpoint}
}

// openVetting starts the source's vetting log on be, as a server would.
func (s *testSource) openVetting(t *testing.T, be storage.Backend) *vlog.Log {
	t.Helper()
	ctx := context.Background()
	ck, _, err := keys.LoadOrCreateNoteKey(filepath.Join(s.dir, "keys", "vetting-checkpoint.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := be.Log(ctx, VettingLog)
	if err != nil {
		t.Fatal(err)
	}
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{Signer: ck.Signer, Format: vlog.TlogTiles(vettingIdentity), Antispam: st.Antispam, Claims: st.Claims, CheckpointInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRunAWS migrates into MariaDB and S3, runs again (nothing left to
// copy), then runs both logs on the copy: old entries are found at their
// indices once the dedup stores have indexed the log, and new ones go
// after them. A target that has grown since is refused.
func TestRunAWS(t *testing.T) {
	ctx := context.Background()
	tc := awsTarget(t)
	s := writeSource(t, 300)
	res, err := Run(ctx, Config{From: s.dir, Target: tc})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, s, res)
	again, err := Run(ctx, Config{From: s.dir, Target: tc})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	for i := range res.Logs {
		if !bytes.Equal(again.Logs[i].Root, res.Logs[i].Root) || again.Logs[i].Size != res.Logs[i].Size {
			t.Fatalf("second run: %+v, first %+v", again.Logs[i], res.Logs[i])
		}
	}

	be, err := storage.Open(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	l := s.openVetting(t, be)
	if idx, dup, _ := addEventually(t, l, s.vetting[5]); idx != 5 || !dup {
		t.Fatalf("old entry 5 again: index %d, duplicate %v", idx, dup)
	}
	idx, dup, cp := addEventually(t, l, []byte("after the move"))
	if size, err := vlog.CheckpointSize(cp); idx != 300 || dup || err != nil || size != 301 {
		t.Fatalf("new entry: index %d, duplicate %v, checkpoint size %d (%v)", idx, dup, size, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	svc := s.openSTICT(t, be, time.Second)
	var a *stictserver.Added
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if a, err = svc.Add(ctx, s.pki.Chain(s.pki.SPC), false); !errors.Is(err, problem.ErrOverloaded) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || a.Index != 2 || !a.Duplicate {
		t.Fatalf("old STI-CT entry 2 again: %+v %v", a, err)
	}
	tn, err := s.pki.NewTN("after the move")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := svc.Add(ctx, s.pki.Chain(tn), false); err != nil || a.Index != 3 || a.Duplicate {
		t.Fatalf("new STI-CT entry: %+v %v", a, err)
	}
	fp := sha256.Sum256(s.pki.Intermediate.DER)
	if der, err := stictserver.NewIssuers(be.Objects(STICTLog)).Get(ctx, fp); err != nil || !bytes.Equal(der, s.pki.Intermediate.DER) {
		t.Fatalf("issuer on the target: %v", err)
	}
	if err := svc.Log().Close(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := Run(ctx, Config{From: s.dir, Target: tc}); err == nil || !strings.Contains(err.Error(), "has size 301, beyond the source's 300") {
		t.Fatalf("migrating into a target that has grown: %v", err)
	}
}

// TestTesseraLeavesSequencerBehind shows why advanceSequencer exists:
// without it a log migrated by Tessera into aws accepts no entry.
func TestTesseraLeavesSequencerBehind(t *testing.T) {
	ctx := context.Background()
	tc := awsTarget(t)
	s := writeSource(t, 2)
	advance = func(context.Context, storage.Config, string, uint64) error { return nil }
	defer func() { advance = advanceSequencer }()
	if _, err := Run(ctx, Config{From: s.dir, Target: tc}); err != nil {
		t.Fatal(err)
	}
	be, err := storage.Open(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	l := s.openVetting(t, be)
	defer l.Close(ctx)
	// Caught up: the old entries are found.
	if idx, dup, _ := addEventually(t, l, s.vetting[1]); idx != 1 || !dup {
		t.Fatalf("old entry: %d %v", idx, dup)
	}
	for range 3 {
		_, _, _, err := l.Add(ctx, []byte("new"))
		if !errors.Is(err, problem.ErrOverloaded) || !strings.Contains(err.Error(), "integration") {
			t.Fatalf("a new entry on a migrated log whose SeqCoord is 0: %v; has Tessera fixed its migration?", err)
		}
		t.Log(err)
		time.Sleep(300 * time.Millisecond)
	}
	if err := advanceSequencer(ctx, tc, VettingLog, 2); err != nil {
		t.Fatal(err)
	}
	if idx, dup, _ := addEventually(t, l, []byte("new")); idx != 2 || dup {
		t.Fatalf("new entry once advanced: %d %v", idx, dup)
	}
}
