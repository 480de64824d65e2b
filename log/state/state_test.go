package state

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// backends opens a fresh posix and aws backend for t (aws skips outside
// CI when no server is reachable).
func backends(t *testing.T) map[string]func(*testing.T) storage.Backend {
	open := func(t *testing.T, c storage.Config) storage.Backend {
		b, err := storage.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	return map[string]func(*testing.T) storage.Backend{
		storage.POSIX: func(t *testing.T) storage.Backend { return open(t, storage.Config{Dir: t.TempDir()}) },
		storage.AWS: func(t *testing.T) storage.Backend {
			a := storagetest.NewAWS(t)
			return open(t, storage.Config{Backend: storage.AWS, DSN: a.DSN, Bucket: a.Bucket, S3Endpoint: a.Endpoint})
		},
	}
}

func TestBind(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			first := LogBinding{Origin: "example.test/vetting", VKey: "example.test/vetting+01+AAAA"}
			if err := Bind(ctx, st, "vetting", first); err != nil {
				t.Fatal(err)
			}
			if err := Bind(ctx, st, "vetting", first); err != nil {
				t.Fatalf("binding again with the same key: %v", err)
			}
			other := LogBinding{Origin: "example.test/vetting", VKey: "example.test/vetting+02+BBBB"}
			if err := Bind(ctx, st, "vetting", other); err == nil || !strings.Contains(err.Error(), "copy the log's key files") {
				t.Fatalf("another key for a bound log: %v", err)
			}
			if b, err := ReadBinding(ctx, st, "vetting"); err != nil || *b != first {
				t.Fatalf("binding changed to %+v, %v", b, err)
			}
			if b, err := ReadBinding(ctx, st, "stict"); err != nil || b != nil {
				t.Fatalf("unbound log: %+v, %v", b, err)
			}
		})
	}
}

func agentJSON(t *testing.T, names ...string) []byte {
	a := &vetting.Agents{}
	for _, n := range names {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		var err error
		if a, err = a.Add(n, jose.JSONWebKey{Key: k.Public()}, ""); err != nil {
			t.Fatal(err)
		}
	}
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAgentsReload: a change is seen, same size or not; a registry that no
// longer parses keeps the previous one; a missing one registers no one.
func TestAgentsReload(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			a, err := OpenAgents(ctx, st, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n := a.Get(ctx).Len(); n != 0 {
				t.Fatalf("new registry has %d agents", n)
			}
			one, other := agentJSON(t, "va"), agentJSON(t, "va")
			if len(one) != len(other) {
				t.Skip("key encodings differ in length; the same-size case needs equal lengths")
			}
			steps := []struct {
				what string
				doc  []byte
				want int
			}{
				{"an agent added", one, 1},
				{"replaced by one of the same size", other, 1},
				{"no longer parses", []byte("{"), 1},
				{"two agents", agentJSON(t, "a", "b"), 2},
			}
			var prev *vetting.Agents
			for _, s := range steps {
				if err := st.Put(ctx, AgentsName, s.doc); err != nil {
					t.Fatal(err)
				}
				got := a.Get(ctx)
				if got.Len() != s.want {
					t.Fatalf("%s: %d agents, want %d", s.what, got.Len(), s.want)
				}
				if s.what == "replaced by one of the same size" && got == prev {
					t.Fatal("same-size replacement not reloaded")
				}
				prev = got
			}
		})
	}
	t.Run("missing registry", func(t *testing.T) {
		dir := t.TempDir()
		b, err := storage.Open(ctx, storage.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		a, err := OpenAgents(ctx, b.State(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.State().Put(ctx, AgentsName, agentJSON(t, "va")); err != nil {
			t.Fatal(err)
		}
		if a.Get(ctx).Len() != 1 {
			t.Fatal("agent not loaded")
		}
		if err := os.Remove(filepath.Join(dir, AgentsName)); err != nil {
			t.Fatal(err)
		}
		if n := a.Get(ctx).Len(); n != 0 {
			t.Fatalf("a removed registry still authorizes %d agents", n)
		}
	})
}

// countingState counts the reads of a posix State, which tells versions.
type countingState struct {
	storage.State
	gets atomic.Int64
}

func (c *countingState) Get(ctx context.Context, name string) ([]byte, error) {
	c.gets.Add(1)
	return c.State.Get(ctx, name)
}

func (c *countingState) Version(ctx context.Context, name string) (string, error) {
	return c.State.(storage.Versioner).Version(ctx, name)
}

// TestAgentsVersion: on posix the registry is read again only when its
// file changed, by a Put or an edit in place, or once ReloadEvery passed;
// every change is still seen by the next Get.
func TestAgentsVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := storage.Open(ctx, storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := &countingState{State: b.State()}
	a, err := OpenAgents(ctx, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		a.Get(ctx)
	}
	if n := st.gets.Load(); n != 1 {
		t.Fatalf("%d reads of an unchanged registry, want 1 (at open)", n)
	}
	if err := st.Put(ctx, AgentsName, agentJSON(t, "va")); err != nil {
		t.Fatal(err)
	}
	if n := a.Get(ctx).Len(); n != 1 {
		t.Fatalf("after a Put: %d agents, want 1", n)
	}
	// An operator's editor writing the file in place.
	if err := os.WriteFile(filepath.Join(dir, AgentsName), agentJSON(t, "a", "b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := a.Get(ctx).Len(); n != 2 {
		t.Fatalf("after an edit in place: %d agents, want 2", n)
	}
	before := st.gets.Load()
	a.Get(ctx)
	time.Sleep(ReloadEvery + 50*time.Millisecond)
	a.Get(ctx)
	if n := st.gets.Load() - before; n != 1 {
		t.Fatalf("%d reads around ReloadEvery, want 1 (after it)", n)
	}
}

// TestReceiptKeys: front ends starting together all land in the history,
// and a key already there is not added twice.
func TestReceiptKeys(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			var keys []jose.JSONWebKey
			for range 4 {
				k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				jwk := jose.JSONWebKey{Key: k.Public(), Algorithm: "ES256", Use: "sig"}
				tp, _ := jwk.Thumbprint(crypto.SHA256)
				jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
				keys = append(keys, jwk)
			}
			var wg sync.WaitGroup
			for _, k := range keys {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := OpenReceiptKeys(ctx, st, k); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			r, err := OpenReceiptKeys(ctx, st, keys[0])
			if err != nil {
				t.Fatal(err)
			}
			set, err := r.JWKS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != len(keys) {
				t.Fatalf("history has %d keys, want %d", len(set.Keys), len(keys))
			}
			for _, k := range keys {
				if len(set.Key(k.KeyID)) != 1 {
					t.Errorf("key %s: %d entries", k.KeyID, len(set.Key(k.KeyID)))
				}
			}
		})
	}
}

// receiptKey returns a fresh receipt public key as a front end publishes it.
func receiptKey(t *testing.T) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: k.Public(), Algorithm: "ES256", Use: "sig"}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk
}

// history reads the receipt key history as stored, bypassing any copy.
func history(t *testing.T, st storage.State) ([]byte, *receipts.KeySet) {
	t.Helper()
	b, err := st.Get(context.Background(), ReceiptKeysName)
	if err != nil {
		t.Fatal(err)
	}
	set, err := receipts.ParseKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, set
}

// window returns the one window of kid in set as Unix seconds (0: none).
func window(t *testing.T, set *receipts.KeySet, kid string) (nbf, exp int64) {
	t.Helper()
	ks := set.Key(kid)
	if len(ks) != 1 {
		t.Fatalf("key %s is in the history %d times", kid, len(ks))
	}
	if !ks[0].NotBefore.IsZero() {
		nbf = ks[0].NotBefore.Unix()
	}
	if !ks[0].Expires.IsZero() {
		exp = ks[0].Expires.Unix()
	}
	return nbf, exp
}

// TestReceiptKeyRotation walks a history through its life: a key added
// with nbf, rotated (old retired with exp, new added with nbf, both at the
// rotation's time), the same rotation run again (as after a crash) changing
// nothing, a retired key refused at start and as a new key, and a second
// rotation leaving the first window alone.
func TestReceiptKeyRotation(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			a, b, c := receiptKey(t), receiptKey(t), receiptKey(t)
			before := time.Now().Unix()
			ra, err := OpenReceiptKeys(ctx, st, a)
			if err != nil {
				t.Fatal(err)
			}
			_, set := history(t, st)
			if nbf, exp := window(t, set, a.KeyID); nbf < before || nbf > time.Now().Unix() || exp != 0 {
				t.Fatalf("new key's window [%d, %d], want nbf about %d and no exp", nbf, exp, before)
			}
			// The server's signer check passes while a is current.
			ra.doc.every = 0
			if err := ra.CheckSigning(a.KeyID, time.Now()); err != nil {
				t.Fatalf("current key: %v", err)
			}

			t1 := time.Unix(time.Now().Unix()+10, 0)
			if _, err := RotateReceiptKey(ctx, st, a, b, t1); err != nil {
				t.Fatal(err)
			}
			raw1, set := history(t, st)
			if nbf, exp := window(t, set, a.KeyID); nbf == 0 || exp != t1.Unix() {
				t.Fatalf("old key's window [%d, %d], want exp %d", nbf, exp, t1.Unix())
			}
			if nbf, exp := window(t, set, b.KeyID); nbf != t1.Unix() || exp != 0 {
				t.Fatalf("new key's window [%d, %d], want nbf %d", nbf, exp, t1.Unix())
			}
			// A front end still holding a is stopped from signing with it.
			if err := ra.CheckSigning(a.KeyID, t1.Add(time.Second)); !errors.Is(err, ErrReceiptKeyRetired) {
				t.Fatalf("retired key signing after its exp: %v", err)
			}

			// Resumed after a crash: the same rotation changes nothing.
			if _, err := RotateReceiptKey(ctx, st, a, b, t1.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if raw, _ := history(t, st); !bytes.Equal(raw, raw1) {
				t.Fatalf("a rotation run again changed the history:\n%s\nthen\n%s", raw1, raw)
			}
			// a may not serve again; b starts without changing anything.
			if _, err := OpenReceiptKeys(ctx, st, a); !errors.Is(err, ErrReceiptKeyRetired) || !strings.Contains(err.Error(), a.KeyID) {
				t.Fatalf("starting with the retired key: %v", err)
			}
			if _, err := OpenReceiptKeys(ctx, st, b); err != nil {
				t.Fatal(err)
			}
			if raw, _ := history(t, st); !bytes.Equal(raw, raw1) {
				t.Fatal("starting with the new key changed the history")
			}
			// A retired key is refused as a rotation's new key.
			if _, err := RotateReceiptKey(ctx, st, b, a, t1.Add(time.Hour)); !errors.Is(err, ErrReceiptKeyRetired) {
				t.Fatalf("rotating to a retired key: %v", err)
			}
			if raw, _ := history(t, st); !bytes.Equal(raw, raw1) {
				t.Fatal("a refused rotation changed the history")
			}

			t2 := t1.Add(48 * time.Hour)
			if _, err := RotateReceiptKey(ctx, st, b, c, t2); err != nil {
				t.Fatal(err)
			}
			_, set = history(t, st)
			if len(set.Keys) != 3 {
				t.Fatalf("history has %d keys, want 3 (none is ever deleted)", len(set.Keys))
			}
			if _, exp := window(t, set, a.KeyID); exp != t1.Unix() {
				t.Fatalf("first key's exp moved to %d", exp)
			}
			if nbf, exp := window(t, set, b.KeyID); nbf != t1.Unix() || exp != t2.Unix() {
				t.Fatalf("second key's window [%d, %d], want [%d, %d]", nbf, exp, t1.Unix(), t2.Unix())
			}
			if nbf, exp := window(t, set, c.KeyID); nbf != t2.Unix() || exp != 0 {
				t.Fatalf("third key's window [%d, %d]", nbf, exp)
			}
		})
	}
}

// TestReceiptKeyRotationConcurrent: front ends rotating their own keys at
// once, while others start, all land in the history (compare-and-swap).
func TestReceiptKeyRotationConcurrent(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t).State()
			const n = 4
			var olds, nexts, starters []jose.JSONWebKey
			for range n {
				k := receiptKey(t)
				if _, err := OpenReceiptKeys(ctx, st, k); err != nil {
					t.Fatal(err)
				}
				olds, nexts, starters = append(olds, k), append(nexts, receiptKey(t)), append(starters, receiptKey(t))
			}
			at := time.Now()
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(2)
				go func() {
					defer wg.Done()
					if _, err := RotateReceiptKey(ctx, st, olds[i], nexts[i], at); err != nil {
						t.Error(err)
					}
				}()
				go func() {
					defer wg.Done()
					if _, err := OpenReceiptKeys(ctx, st, starters[i]); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			_, set := history(t, st)
			if len(set.Keys) != 3*n {
				t.Fatalf("history has %d keys, want %d", len(set.Keys), 3*n)
			}
			for i := range n {
				if _, exp := window(t, set, olds[i].KeyID); exp != at.Unix() {
					t.Errorf("old key %d not retired at %d: exp %d", i, at.Unix(), exp)
				}
				if nbf, exp := window(t, set, nexts[i].KeyID); nbf != at.Unix() || exp != 0 {
					t.Errorf("new key %d: [%d, %d]", i, nbf, exp)
				}
				if _, exp := window(t, set, starters[i].KeyID); exp != 0 {
					t.Errorf("starting key %d retired", i)
				}
			}
		})
	}
}

// TestReceiptKeysLegacyHistory: a history written before windows (a plain
// JWKS) keeps its keys valid for any iat: starting with one of them does
// not rewrite it, and rotating one gives it an exp and no nbf.
func TestReceiptKeysLegacyHistory(t *testing.T) {
	ctx := context.Background()
	b, err := storage.Open(ctx, storage.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := b.State()
	old, next := receiptKey(t), receiptKey(t)
	legacy, _ := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{old}}, "", "  ")
	if err := st.Put(ctx, ReceiptKeysName, append(legacy, '\n')); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReceiptKeys(ctx, st, old)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := history(t, st); !bytes.Equal(raw, append(legacy, '\n')) {
		t.Fatalf("starting with a legacy key rewrote the history:\n%s", raw)
	}
	if err := r.CheckSigning(old.KeyID, time.Unix(0, 0)); err != nil {
		t.Fatalf("a legacy key may sign at any iat: %v", err)
	}
	at := time.Now()
	if _, err := RotateReceiptKey(ctx, st, old, next, at); err != nil {
		t.Fatal(err)
	}
	_, set := history(t, st)
	if nbf, exp := window(t, set, old.KeyID); nbf != 0 || exp != at.Unix() {
		t.Fatalf("rotated legacy key's window [%d, %d], want [none, %d]", nbf, exp, at.Unix())
	}
	// An old key the history never had is kept, retired.
	stray, newer := receiptKey(t), receiptKey(t)
	if _, err := RotateReceiptKey(ctx, st, stray, newer, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, set = history(t, st)
	if nbf, exp := window(t, set, stray.KeyID); nbf != 0 || exp != at.Add(time.Hour).Unix() {
		t.Fatalf("stray old key's window [%d, %d]", nbf, exp)
	}
}
