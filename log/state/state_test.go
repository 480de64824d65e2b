package state

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/vetting"
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
