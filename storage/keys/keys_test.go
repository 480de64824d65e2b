package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%q, mode %v", b, fi.Mode())
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files", len(ents))
	}
}

func TestNoteKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	k, created, err := LoadOrCreateNoteKey(p, "example.test/log")
	if err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	// The vkey verifies what the signer signs.
	v, err := note.NewVerifier(k.VKey)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := note.Sign(&note.Note{Text: "hello\n"}, k.Signer)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("vkey does not verify the key's signature: %v", err)
	}
	k2, created, err := LoadOrCreateNoteKey(p, "")
	if err != nil || created || k2.VKey != k.VKey {
		t.Fatalf("reload: %v, %v, %s", created, err, k2.VKey)
	}
	if _, _, err := LoadOrCreateNoteKey(p, "other.test/log"); err == nil || !strings.Contains(err.Error(), "new origin needs a new key") {
		t.Fatalf("key under another origin: %v", err)
	}
	os.Chmod(p, 0o644)
	if _, _, err := LoadOrCreateNoteKey(p, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	if _, _, err := LoadOrCreateNoteKey(filepath.Join(t.TempDir(), "none"), ""); err == nil {
		t.Fatal("missing key with no name to create one")
	}
}

func TestJWK(t *testing.T) {
	dir := t.TempDir()
	for alg, want := range map[string]any{"ES256": &ecdsa.PrivateKey{}, "EdDSA": ed25519.PrivateKey{}} {
		p := filepath.Join(dir, alg+".jwk")
		k, created, err := LoadOrCreateJWK(p, alg)
		if err != nil || !created || k.KeyID == "" {
			t.Fatalf("%s: %v %v", alg, created, err)
		}
		again, created, err := LoadOrCreateJWK(p, alg)
		if err != nil || created || again.KeyID != k.KeyID {
			t.Fatalf("%s reload: %v %v", alg, created, err)
		}
		switch want.(type) {
		case *ecdsa.PrivateKey:
			if _, ok := again.Key.(*ecdsa.PrivateKey); !ok {
				t.Fatalf("%s: %T", alg, again.Key)
			}
		case ed25519.PrivateKey:
			if _, ok := again.Key.(ed25519.PrivateKey); !ok {
				t.Fatalf("%s: %T", alg, again.Key)
			}
		}
		pub := k.Public()
		if err := WriteJWK(filepath.Join(dir, "pub"), &pub); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadJWK(filepath.Join(dir, "pub")); err == nil {
			t.Fatal("a public key loaded as a private one")
		}
	}
	if _, err := NewJWK("RS256"); err == nil {
		t.Fatal("RS256 key generated")
	}
}

// TestLockDir: a locked directory cannot be locked again, even after a
// garbage collection, until its lock file is closed.
func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l1, err := LockDir(dir, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	if _, err := LockDir(dir, 0o755); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second lock: %v", err)
	}
	l1.Close()
	l2, err := LockDir(dir, 0o755)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()
}

// TestLockFile: servers share a key file's lock; rotation's exclusive lock
// excludes them and they it; a replaced file is a new file to lock.
func TestLockFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "receipt.jwk")
	k, err := NewJWK("ES256")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteJWK(p, k); err != nil {
		t.Fatal(err)
	}
	s1, err := LockFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LockFile(p, false)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := LockFile(p, true); !errors.Is(err, ErrLocked) {
		t.Fatalf("exclusive lock beside shared ones: %v", err)
	}
	s1.Close()
	if _, err := LockFile(p, true); !errors.Is(err, ErrLocked) {
		t.Fatalf("exclusive lock beside one shared lock: %v", err)
	}
	s2.Close()
	x, err := LockFile(p, true)
	if err != nil {
		t.Fatalf("exclusive lock once the shared ones are gone: %v", err)
	}
	if _, err := LockFile(p, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared lock beside an exclusive one: %v", err)
	}
	// The holder of the exclusive lock replaces the file: the new file is
	// not locked, the old one (now nameless) still is.
	if err := WriteJWK(p, k); err != nil {
		t.Fatal(err)
	}
	s3, err := LockFile(p, false)
	if err != nil {
		t.Fatalf("shared lock of the replaced file: %v", err)
	}
	s3.Close()
	x.Close()
	if _, err := LockFile(filepath.Join(t.TempDir(), "missing"), false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("locking a missing file: %v", err)
	}
}
