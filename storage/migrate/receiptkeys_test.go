package migrate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
)

// TestMergeReceiptKeyWindows: merging into a target that has a history
// keeps every key's validity window. A key in both histories (here: a
// server started on the target with a key the source had retired) gets the
// earlier start and stays retired.
func TestMergeReceiptKeyWindows(t *testing.T) {
	ctx := context.Background()
	key := func() receipts.Key {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		s, err := receipts.NewSigner(k)
		if err != nil {
			t.Fatal(err)
		}
		return receipts.Key{JSONWebKey: s.PublicJWK()}
	}
	nbf, exp := time.Unix(1767225600, 0), time.Unix(1769904000, 0)
	old, next, other := key(), key(), key()
	src := &source{rkeySet: receipts.KeySet{Keys: []receipts.Key{
		{JSONWebKey: old.JSONWebKey, NotBefore: nbf, Expires: exp},
		{JSONWebKey: next.JSONWebKey, NotBefore: exp},
		{JSONWebKey: other.JSONWebKey}, // from a history before windows
	}}}
	src.rkeys, _ = json.Marshal(src.rkeySet)

	be, err := storage.Open(ctx, posixTarget(t))
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	// On the target, servers started with the old key (current there) and
	// with the other key (from now on).
	if _, err := state.OpenReceiptKeys(ctx, be.State(), old.JSONWebKey); err != nil {
		t.Fatal(err)
	}
	if _, err := state.OpenReceiptKeys(ctx, be.State(), other.JSONWebKey); err != nil {
		t.Fatal(err)
	}
	n, err := (&target{be: be}).mergeReceiptKeys(ctx, src)
	if err != nil || n != 3 {
		t.Fatalf("merged %d keys, %v; want 3", n, err)
	}
	b, err := be.State().Get(ctx, state.ReceiptKeysName)
	if err != nil {
		t.Fatal(err)
	}
	set, err := receipts.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if k := set.Key(old.KeyID); len(k) != 1 || !k[0].NotBefore.Equal(nbf) || !k[0].Expires.Equal(exp) {
		t.Errorf("old key after the merge: %+v, want window [%v, %v]", k, nbf, exp)
	}
	if k := set.Key(next.KeyID); len(k) != 1 || !k[0].NotBefore.Equal(exp) || k[0].Retired() {
		t.Errorf("new key after the merge: %+v", k)
	}
	if k := set.Key(other.KeyID); len(k) != 1 || k[0].Retired() || !k[0].NotBefore.IsZero() {
		t.Errorf("a key without a window in the source: %+v, want none after the merge", k)
	}
}
