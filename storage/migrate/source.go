package migrate

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	fmtlog "github.com/transparency-dev/formats/log"

	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// source is a verified posix data directory, held locked.
type source struct {
	dir     string
	be      storage.Backend // the posix backend: its lock, and its State
	logs    []*sourceLog
	issuers []string // file names under stict/issuer/, each checked
	agents  []byte   // agents.json, or nil
	nAgents int
	rkeys   []byte          // receipt-keys.json, or nil
	rkeySet receipts.KeySet // with the keys' validity windows
}

// sourceLog is one log of the source.
type sourceLog struct {
	spec    layoutSpec
	dir     string           // <dir>/<name>
	binding state.LogBinding // the source's, or one made from its key
	bound   bool             // the source had the binding
	// present is false for a log that has a binding but no checkpoint
	// (it never started): only its binding is copied.
	present    bool
	checkpoint []byte
	size       uint64
	root       []byte
}

func (l *sourceLog) name() string { return l.spec.name }

// read reads a file of the log's directory by its tlog-tiles path.
func (l *sourceLog) read(_ context.Context, p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(l.dir, filepath.FromSlash(p)))
}

// openSource locks c.From and reads and verifies everything to be copied.
// It writes nothing but the lock file.
func openSource(ctx context.Context, c *Config) (_ *source, err error) {
	fi, err := os.Stat(c.From)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory", c.From)
	}
	// Checked before locking, which would create a lock file in any
	// directory named by mistake.
	if _, err := os.Stat(filepath.Join(c.From, VettingLog, "checkpoint")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("source %s is not a vesperlog data directory: it has no %s/checkpoint", c.From, VettingLog)
	} else if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	be, err := storage.Open(ctx, storage.Config{Backend: storage.POSIX, Dir: c.From})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	s := &source{dir: c.From, be: be}
	defer func() {
		if err != nil {
			be.Close()
		}
	}()
	vk, err := s.openLog(ctx, specs[VettingLog], func() (*state.LogBinding, error) { return vettingKeyBinding(c.VettingKey) })
	if err != nil {
		return nil, err
	}
	s.logs = append(s.logs, vk)
	sk, err := s.openLog(ctx, specs[STICTLog], func() (*state.LogBinding, error) {
		return stictKeyBinding(c.STICTKey, filepath.Join(c.From, STICTLog, "checkpoint"))
	})
	if err != nil {
		return nil, err
	}
	if sk != nil {
		s.logs = append(s.logs, sk)
	}
	if err := s.readIssuers(); err != nil {
		return nil, err
	}
	if err := s.readState(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *source) close() error { return s.be.Close() }

// openLog reads and verifies a log's checkpoint with its key: the
// binding's, else the one keyBinding reads from its key file (nil if
// there is none). It returns nil for a log the source does not have.
func (s *source) openLog(ctx context.Context, spec layoutSpec, keyBinding func() (*state.LogBinding, error)) (*sourceLog, error) {
	name := spec.name
	l := &sourceLog{spec: spec, dir: filepath.Join(s.dir, name)}
	b, err := state.ReadBinding(ctx, s.be.State(), name)
	if err != nil {
		return nil, fmt.Errorf("source %s log: %w", name, err)
	}
	l.checkpoint, err = os.ReadFile(filepath.Join(l.dir, "checkpoint"))
	switch {
	case errors.Is(err, fs.ErrNotExist) && b == nil:
		return nil, nil // never run here
	case errors.Is(err, fs.ErrNotExist):
		l.binding, l.bound = *b, true
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("source %s log: %w", name, err)
	}
	l.present = true
	kb, err := keyBinding()
	if err != nil {
		return nil, fmt.Errorf("source %s log: %w", name, err)
	}
	switch {
	case b == nil && kb == nil:
		return nil, fmt.Errorf("source %s log: cannot verify its checkpoint: no log-%s.json binding and no key file", name, name)
	case b != nil && kb != nil && *b != *kb:
		return nil, fmt.Errorf("source %s log: its key file has vkey %q, but the log is bound to %q", name, kb.VKey, b.VKey)
	case b != nil:
		l.binding, l.bound = *b, true
	default:
		l.binding = *kb
	}
	v, err := policy.NewLogVerifier(l.binding.VKey)
	if err != nil {
		return nil, fmt.Errorf("source %s log: vkey %q: %w", name, l.binding.VKey, err)
	}
	cp, _, _, err := fmtlog.ParseCheckpoint(l.checkpoint, l.binding.Origin, v)
	if err != nil {
		return nil, fmt.Errorf("source %s log: checkpoint %s does not verify with the log's key %s: %w", name, filepath.Join(l.dir, "checkpoint"), l.binding.VKey, err)
	}
	if len(cp.Hash) != sha256.Size {
		return nil, fmt.Errorf("source %s log: checkpoint root is %d bytes", name, len(cp.Hash))
	}
	l.size, l.root = cp.Size, cp.Hash
	return l, nil
}

// vettingKeyBinding is the vetting log's identity from its signed-note
// key: the key's name is the origin. It is nil if there is no key file.
func vettingKeyBinding(path string) (*state.LogBinding, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	// With no name, LoadOrCreateNoteKey only loads.
	k, _, err := keys.LoadOrCreateNoteKey(path, "")
	if err != nil {
		return nil, err
	}
	return &state.LogBinding{Origin: k.Signer.Name(), VKey: k.VKey}, nil
}

// stictKeyBinding is the STI-CT log's identity from its P-256 key and its
// checkpoint's origin line. It is nil if there is no key file.
func stictKeyBinding(path, checkpoint string) (*state.LogBinding, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	k, err := keys.LoadJWK(path)
	if err != nil {
		return nil, err
	}
	ek, ok := k.Key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s is not a P-256 private key", path)
	}
	cp, err := os.ReadFile(checkpoint)
	if err != nil {
		return nil, err
	}
	origin, _, _ := strings.Cut(string(cp), "\n")
	signer, err := stict.NewSigner(origin, ek)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return &state.LogBinding{Origin: origin, VKey: signer.VKey()}, nil
}

// issuerName is an issuer object's name: the hex SHA-256 of its DER.
var issuerName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// readIssuers lists the STI-CT issuer files and checks that each hashes
// to its name.
func (s *source) readIssuers() error {
	dir := filepath.Join(s.dir, STICTLog, "issuer")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("source issuers: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue // a temporary file of an interrupted write
		}
		if !issuerName.MatchString(name) || !de.Type().IsRegular() {
			return fmt.Errorf("source issuers: unexpected %s in %s", name, dir)
		}
		if _, err := s.issuer(name); err != nil {
			return err
		}
		s.issuers = append(s.issuers, name)
	}
	return nil
}

// issuer reads an issuer file, checked against its name.
func (s *source) issuer(name string) ([]byte, error) {
	der, err := os.ReadFile(filepath.Join(s.dir, STICTLog, "issuer", name))
	if err != nil {
		return nil, fmt.Errorf("source issuer: %w", err)
	}
	if h := sha256.Sum256(der); hex.EncodeToString(h[:]) != name {
		return nil, fmt.Errorf("source issuer %s does not hash to its name", name)
	}
	return der, nil
}

// readState reads the agent registry and the receipt key history, if
// the source has them, and checks that they parse.
func (s *source) readState(ctx context.Context) error {
	st := s.be.State()
	b, err := st.Get(ctx, state.AgentsName)
	switch {
	case errors.Is(err, storage.ErrNotExist):
	case err != nil:
		return fmt.Errorf("source: %w", err)
	default:
		ag, err := vetting.ParseAgents(b)
		if err != nil {
			return fmt.Errorf("source %s: %w", state.AgentsName, err)
		}
		s.agents, s.nAgents = b, ag.Len()
	}
	b, err = st.Get(ctx, state.ReceiptKeysName)
	switch {
	case errors.Is(err, storage.ErrNotExist):
	case err != nil:
		return fmt.Errorf("source: %w", err)
	default:
		set, err := receipts.ParseKeySet(b)
		if err != nil {
			return fmt.Errorf("source %s: %w", state.ReceiptKeysName, err)
		}
		s.rkeySet = *set
		for _, k := range s.rkeySet.Keys {
			if k.KeyID == "" || !k.IsPublic() || !k.Valid() {
				return fmt.Errorf("source %s: a key is not a public key with a kid", state.ReceiptKeysName)
			}
		}
		s.rkeys = b
	}
	return nil
}
