package log

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestSharedProofs checks the Provers' shared tiles against two other
// builders of the same proofs: golang.org/x/mod/sumdb/tlog over the
// entries kept in memory, and Tessera's client.ProofBuilder (what the
// Provers used before, so receipts stay byte for byte the same). The
// tree grows through sizes inside and across tiles; each size's proofs
// are asked for by concurrent requests, and the sizes passed are asked
// again after newer ones (a private tree, then full tiles carried over).
func TestSharedProofs(t *testing.T) {
	l, v := openTestLogWith(t, func(e []byte) ([]byte, error) { return e, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var entries [][]byte
	var hashes []tlog.Hash // tlog's stored hashes of entries
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, k := range idx {
			out[i] = hashes[k]
		}
		return out, nil
	})
	var sizes []uint64
	for _, batch := range []int{1, 6, 249, 1, 300, 443, 512} {
		// Added concurrently, the batch lands in some order: the
		// entries are kept by the index each got.
		base := len(entries)
		entries = append(entries, make([][]byte, batch)...)
		var wg sync.WaitGroup
		for i := range batch {
			e := fmt.Appendf(nil, "entry %d", base+i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				idx, dup, _, err := l.Add(ctx, e)
				if err != nil || dup || idx < uint64(base) || idx >= uint64(len(entries)) {
					t.Errorf("Add(%s) = %d, %v, %v", e, idx, dup, err)
					return
				}
				entries[idx] = e
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for i := base; i < len(entries); i++ {
			h, err := tlog.StoredHashes(int64(i), entries[i], hr)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, h...)
		}
		// The latest checkpoint covers the whole batch.
		cp, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, _, _, err := fmtlog.ParseCheckpoint(cp, l.Origin(), v)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != uint64(len(entries)) {
			t.Fatalf("checkpoint size %d after %d entries", c.Size, len(entries))
		}
		sizes = append(sizes, c.Size)
		for _, size := range sizes {
			checkProofs(t, ctx, l, entries, hr, size)
		}
	}
}

// checkProofs compares, for every entry of the tree of the given size,
// the Prover's entry and proof (from 4 concurrent requests) with tlog's
// and Tessera's, and then consistency proofs to that size.
func checkProofs(t *testing.T, ctx context.Context, l *Log, entries [][]byte, hr tlog.HashReader, size uint64) {
	t.Helper()
	root, err := tlog.TreeHash(int64(size), hr)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := client.NewProofBuilder(ctx, size, l.reader.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for i := range size {
		want, err := tlog.ProveRecord(int64(size), int64(i), hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(want, int64(size), root, int64(i), tlog.RecordHash(entries[i])); err != nil {
			t.Fatalf("tlog's own proof of %d in %d: %v", i, size, err)
		}
		tessera, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pr, err := l.Prover(ctx, size)
				if err != nil {
					t.Error(err)
					return
				}
				e, err := pr.Entry(ctx, i)
				if err != nil || !bytes.Equal(e, entries[i]) {
					t.Errorf("Entry(%d) in %d = %q, %v", i, size, e, err)
				}
				got, err := pr.InclusionProof(ctx, i)
				if err != nil {
					t.Errorf("InclusionProof(%d) in %d: %v", i, size, err)
					return
				}
				if len(got) != len(want) || len(got) != len(tessera) {
					t.Errorf("proof of %d in %d: %d hashes, tlog %d, Tessera %d", i, size, len(got), len(want), len(tessera))
					return
				}
				for k := range got {
					if !bytes.Equal(got[k], want[k][:]) || !bytes.Equal(got[k], tessera[k]) {
						t.Errorf("proof of %d in %d: hash %d differs", i, size, k)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// Consistency proofs to size from sizes inside and across tiles.
	pr, err := l.Prover(ctx, size)
	if err != nil {
		t.Fatal(err)
	}
	for _, first := range []uint64{1, 2, 7, 255, 256, 257, 511, 512, 513, size / 2, size - 1, size} {
		if first == 0 || first > size {
			continue
		}
		want, err := tlog.ProveTree(int64(size), int64(first), hr)
		if err != nil {
			t.Fatal(err)
		}
		tessera, err := pb.ConsistencyProof(ctx, first, size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pr.ConsistencyProof(ctx, first)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d) to %d: %v", first, size, err)
		}
		if len(got) != len(want) || len(got) != len(tessera) {
			t.Fatalf("consistency proof %d to %d: %d hashes, tlog %d, Tessera %d", first, size, len(got), len(want), len(tessera))
		}
		for k := range got {
			if !bytes.Equal(got[k], want[k][:]) || !bytes.Equal(got[k], tessera[k]) {
				t.Fatalf("consistency proof %d to %d: hash %d differs", first, size, k)
			}
		}
	}
}

// TestVerifiedCheckpoints checks that a checkpoint is remembered only
// once it met the very policy asked about, in its exact bytes.
func TestVerifiedCheckpoints(t *testing.T) {
	cp, p := signedCheckpoint(t)
	var vc verifiedCheckpoints
	for range 2 { // the second time from the cache
		if err := vc.verify(p, cp); err != nil {
			t.Fatalf("the log's checkpoint: %v", err)
		}
	}
	// One byte changed in the signature: verified again, and refused.
	bad := bytes.Clone(cp)
	bad[len(bad)-10] ^= 1
	if err := vc.verify(p, bad); err == nil {
		t.Fatal("a checkpoint with a broken signature met the policy")
	}
	if err := vc.verify(p, bad); err == nil {
		t.Fatal("a checkpoint with a broken signature met the policy")
	}
	// Another policy (another key for the origin) is not the one verified.
	_, op := signedCheckpoint(t)
	if err := vc.verify(op, cp); err == nil {
		t.Fatal("the checkpoint met a policy that does not have its key")
	}
	// The caller changing its slice afterwards changes nothing cached.
	cp2 := bytes.Clone(cp)
	if err := vc.verify(p, cp2); err != nil {
		t.Fatal(err)
	}
	cp2[len(cp2)-10] ^= 1
	if err := vc.verify(p, cp2); err == nil {
		t.Fatal("a changed checkpoint met the policy from the cache")
	}
}

// signedCheckpoint is a checkpoint of example.test/log signed by a new
// key, and the policy of that key alone.
func signedCheckpoint(t *testing.T) ([]byte, *policy.Policy) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	body := fmtlog.Checkpoint{Origin: "example.test/log", Size: 1, Hash: make([]byte, 32)}.Marshal()
	cp, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.ForLog(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cp, p
}

// BenchmarkInclusionProof is one receipt's proof in a tree of 1,000
// entries: built by a Prover sharing the latest tree (what requests do
// now), and by a new Tessera ProofBuilder a request, reading its tiles
// again (what they did before). Every proof is checked against the root
// that golang.org/x/mod/sumdb/tlog computes over the same entries.
func BenchmarkInclusionProof(b *testing.B) {
	l, _ := openTestLogWith(b, func(e []byte) ([]byte, error) { return e, nil })
	ctx := context.Background()
	const size = 1000
	entries := make([][]byte, size)
	var wg sync.WaitGroup
	for i := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := fmt.Appendf(nil, "entry %d", i)
			idx, _, _, err := l.Add(ctx, e)
			if err != nil || idx >= size {
				b.Errorf("Add(%s) = %d, %v", e, idx, err)
				return
			}
			entries[idx] = e
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, k := range idx {
			out[i] = hashes[k]
		}
		return out, nil
	})
	for i, e := range entries {
		h, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, h...)
	}
	root, err := tlog.TreeHash(size, hr)
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, i int, p [][]byte) {
		rp := make(tlog.RecordProof, len(p))
		for k, h := range p {
			copy(rp[k][:], h)
		}
		if err := tlog.CheckRecord(rp, size, root, int64(i), tlog.RecordHash(entries[i])); err != nil {
			b.Fatalf("proof of %d in %d: %v", i, size, err)
		}
	}
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			pr, err := l.Prover(ctx, size)
			if err != nil {
				b.Fatal(err)
			}
			p, err := pr.InclusionProof(ctx, uint64(i))
			if err != nil {
				b.Fatal(err)
			}
			check(b, i, p)
			i = (i + 1) % size
		}
	})
	b.Run("tessera-per-request", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			pb, err := client.NewProofBuilder(ctx, size, l.reader.ReadTile)
			if err != nil {
				b.Fatal(err)
			}
			p, err := pb.InclusionProof(ctx, uint64(i))
			if err != nil {
				b.Fatal(err)
			}
			check(b, i, p)
			i = (i + 1) % size
		}
	})
}

// TestFlightsKeepTakingKeys: a full cache still keeps a new key, so that a
// log past the cache's size does not read every tile again for each proof.
func TestFlightsKeepTakingKeys(t *testing.T) {
	var f flights[int, int]
	f.init(4)
	loads := 0
	load := func(k int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { loads++; return k, nil }
	}
	ctx := context.Background()
	for k := range 10 {
		for range 2 {
			if v, err := f.get(ctx, k, load(k)); err != nil || v != k {
				t.Fatalf("get %d: %d, %v", k, v, err)
			}
		}
	}
	if loads != 10 {
		t.Fatalf("%d loads for 10 keys got twice each, want 10", loads)
	}
	if len(f.m) != 4 {
		t.Fatalf("the cache holds %d keys, want its bound 4", len(f.m))
	}
}
