package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"
)

// WriteFile writes data to path atomically: readers see the old file or the
// new one, never a part, and after a crash the new one is on disk or not at all.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if syncWrites {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("syncing %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return syncDir(dir)
}

// MkdirAll is os.MkdirAll, but each directory it makes is durable before it
// returns: after a power cut a new directory's entry in its parent is gone
// unless the parent was synced (storage/faultfs finds this).
func MkdirAll(dir string, perm os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	// A directory another writer made meanwhile may not be synced yet.
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// Remove removes the file at path durably: after a power cut a removed
// entry comes back unless its directory was synced, as a written one goes.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	if !syncWrites {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// readPrivate reads a private key file, refusing one that others can read.
func readPrivate(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key %s is readable by others (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// NoteKey is a signed-note key pair.
type NoteKey struct {
	Signer note.Signer
	VKey   string // the public verifier key, in vkey form
}

// NoteKeyKind makes and reads one kind of signed-note private key.
type NoteKeyKind struct {
	// Generate returns a new private key named name.
	Generate func(name string) (skey string, err error)
	// Parse returns a private key's signer and public vkey.
	Parse func(skey string) (note.Signer, string, error)
}

// Ed25519NoteKey is the signed-note Ed25519 key (type 0x01) a log signs
// its checkpoints with.
var Ed25519NoteKey = NoteKeyKind{
	Generate: func(name string) (string, error) {
		skey, _, err := note.GenerateKey(rand.Reader, name)
		return skey, err
	},
	Parse: func(skey string) (note.Signer, string, error) {
		signer, err := note.NewSigner(skey)
		if err != nil {
			return nil, "", err
		}
		vkey, err := VKey(skey)
		return signer, vkey, err
	},
}

// LoadOrCreateNoteKey loads the Ed25519 signed-note key at path, or creates
// one named name if there is none. A loaded key must be named name, unless
// name is empty. created says whether the key is new.
func LoadOrCreateNoteKey(path, name string) (k *NoteKey, created bool, err error) {
	return LoadOrCreateKey(path, name, Ed25519NoteKey)
}

// LoadOrCreateKey is LoadOrCreateNoteKey for a key of the given kind: the
// file is written atomically with mode 0600, and read only if others
// cannot read it.
func LoadOrCreateKey(path, name string, kind NoteKeyKind) (k *NoteKey, created bool, err error) {
	b, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		if name == "" {
			return nil, false, fmt.Errorf("no key at %s, and no name to create one with", path)
		}
		skey, err := kind.Generate(name)
		if err != nil {
			return nil, false, fmt.Errorf("generating key %q: %w", name, err)
		}
		if err := WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
			return nil, false, err
		}
		b, created = []byte(skey), true
	} else if err != nil {
		return nil, false, fmt.Errorf("reading key: %w", err)
	}
	signer, vkey, err := kind.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, false, fmt.Errorf("key %s is not a signed-note private key of the expected kind: %w", path, err)
	}
	if name != "" && signer.Name() != name {
		return nil, false, fmt.Errorf("key %s is named %q, not %q: a log's key and origin go together (a new origin needs a new key)", path, signer.Name(), name)
	}
	return &NoteKey{Signer: signer, VKey: vkey}, created, nil
}

// VKey returns the verifier key of an Ed25519 signed-note private key.
func VKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a signed-note private key")
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", err
	}
	seed, err := decodeStd(parts[4])
	if err != nil || len(seed) != 1+ed25519.SeedSize || seed[0] != 1 {
		return "", errors.New("not an Ed25519 signed-note private key")
	}
	pub := ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(signer.Name(), pub)
}

// LoadOrCreateJWK loads the private JWK at path, or creates one with the
// given algorithm ("ES256" or "EdDSA") if there is none.
func LoadOrCreateJWK(path, alg string) (key *jose.JSONWebKey, created bool, err error) {
	key, err = LoadJWK(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = NewJWK(alg)
	if err != nil {
		return nil, false, err
	}
	if err := WriteJWK(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// NewJWK generates a private key for alg ("ES256" or "EdDSA") with its
// thumbprint as kid.
func NewJWK(alg string) (*jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("key algorithm %q: use ES256 or EdDSA", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	k := &jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k.KeyID = encodeURL(tp)
	return k, nil
}

// WriteJWK writes a private JWK file, mode 0600.
func WriteJWK(path string, k *jose.JSONWebKey) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	return WriteFile(path, append(b, '\n'), 0o600)
}

// LoadJWK reads a private JWK file.
func LoadJWK(path string) (*jose.JSONWebKey, error) {
	b, err := readPrivate(path)
	if err != nil {
		// A public key is readable by others, as it should be: say what
		// it is rather than that it is exposed.
		var pub jose.JSONWebKey
		if pb, rerr := os.ReadFile(path); rerr == nil && json.Unmarshal(pb, &pub) == nil && pub.Key != nil && pub.IsPublic() {
			return nil, fmt.Errorf("key %s is a public JWK; a private key is needed here (keygen writes it as NAME.jwk beside NAME.pub.jwk)", path)
		}
		return nil, fmt.Errorf("reading key: %w", err)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("key %s is not a JWK: %w", path, err)
	}
	if k.IsPublic() {
		return nil, fmt.Errorf("key %s is a public key; a private key is needed here", path)
	}
	if _, ok := k.Key.(crypto.Signer); !ok {
		return nil, fmt.Errorf("key %s (%T) cannot sign", path, k.Key)
	}
	return &k, nil
}

func decodeStd(s string) ([]byte, error) { return base64.StdEncoding.Strict().DecodeString(s) }

func encodeURL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// LockDir takes an exclusive lock on dir (creating it, mode perm), so that
// two processes never share it: two servers started at once on a fresh
// directory would each create its keys. The lock lasts until the returned
// file is closed, or garbage collected: keep it.
func LockDir(dir string, perm os.FileMode) (*os.File, error) {
	if err := MkdirAll(dir, perm); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// ErrLocked is returned by LockFile when another process holds a
// conflicting lock.
var ErrLocked = errors.New("locked by another process")

// LockFile locks the existing file at path until the returned file is
// closed: shared (a server holds its receipt key so) or exclusive
// (vesperlog keys rotate-receipt, while it replaces the key), so that a key
// is never replaced under a process using it. It does not wait: a
// conflicting lock fails at once with ErrLocked.
//
// The lock is on the file itself, not on a lock file beside it, so that a
// key mounted read-only can be locked. Replacing the file (WriteFile
// renames) makes a new one; LockFile checks after locking that path still
// names the file it locked, and tries again if not.
func LockFile(path string, exclusive bool) (*os.File, error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for range 10 {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s is %w", path, ErrLocked)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		locked, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err := errors.Join(err1, err2); err != nil && !errors.Is(err2, fs.ErrNotExist) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if err2 == nil && os.SameFile(locked, named) {
			return f, nil
		}
		f.Close() // replaced between open and lock: lock the new file
	}
	return nil, fmt.Errorf("locking %s: it keeps being replaced", path)
}
