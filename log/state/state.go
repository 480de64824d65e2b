package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
)

// Document names in the State.
const (
	AgentsName      = "agents.json"
	ReceiptKeysName = "receipt-keys.json"
)

// ReloadEvery is how stale a front end's copy of a shared document may be
// where reading it costs a round trip to a database (OpenAgents' every).
const ReloadEvery = time.Second

// swapTries bounds the compare-and-swap loops: each lost race means
// another front end wrote, and a few rounds settle any start-up.
const swapTries = 20

// LogBinding is a log's fixed identity in its backend.
type LogBinding struct {
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
}

func bindingName(log string) string { return "log-" + log + ".json" }

// ExtraKeys name the further keys a log may sign its checkpoints with,
// each bound on its own as KeyBinding(log, key): the STI-CT log's Ed25519
// note key, and either log's ML-DSA-44 key.
var ExtraKeys = []string{"note", "mldsa"}

// KeyBinding is the name Bind and ReadBinding take for a log's further
// checkpoint key (one of ExtraKeys).
func KeyBinding(log, key string) string { return log + "-" + key }

// ReadBinding returns a log's binding, or nil if it has none yet.
func ReadBinding(ctx context.Context, st storage.State, log string) (*LogBinding, error) {
	b, err := st.Get(ctx, bindingName(log))
	if errors.Is(err, storage.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lb LogBinding
	if err := json.Unmarshal(b, &lb); err != nil {
		return nil, fmt.Errorf("%s in the backend: %w", bindingName(log), err)
	}
	return &lb, nil
}

// Bind records that log has the given origin and checkpoint vkey, or
// checks that it already has: a backend's log is never signed by another
// key, whichever front end starts first.
func Bind(ctx context.Context, st storage.State, log string, want LogBinding) error {
	b, err := json.Marshal(want)
	if err != nil {
		return err
	}
	if _, err := st.Create(ctx, bindingName(log), b); err != nil {
		return fmt.Errorf("binding log %s: %w", log, err)
	}
	got, err := ReadBinding(ctx, st, log)
	if err != nil {
		return err
	}
	if got == nil {
		return fmt.Errorf("binding log %s: the binding vanished after it was written", log)
	}
	if *got != want {
		return fmt.Errorf("the backend's %s log is %q with key %q; this front end has %q with key %q (copy the log's key files from a front end that serves it)",
			log, got.Origin, got.VKey, want.Origin, want.VKey)
	}
	return nil
}

// doc is a shared document as of its last reload.
type doc struct {
	st    storage.State
	name  string
	every time.Duration // how long a copy is used before it is read again

	mu      sync.Mutex // guards the fields below
	loaded  time.Time
	bytes   []byte
	version string // of bytes, if st is a storage.Versioner ("" if unknown)
}

// get returns the document's bytes, reloading them if they are older than
// d.every, and whether they changed. Where the State tells versions
// (posix), a copy whose version still stands is kept up to ReloadEvery
// without reading the document.
func (d *doc) get(ctx context.Context) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded.IsZero() && time.Since(d.loaded) < d.every {
		return d.bytes, false, nil
	}
	var version string
	if vs, ok := d.st.(storage.Versioner); ok {
		// Taken before the read: a change in between is seen next time.
		v, err := vs.Version(ctx, d.name)
		if err == nil && v == d.version && time.Since(d.loaded) < ReloadEvery {
			return d.bytes, false, nil
		}
		version = v // "" on an error, which the Get below reports
	}
	b, err := d.st.Get(ctx, d.name)
	if err != nil {
		return nil, false, err
	}
	d.loaded = time.Now()
	d.version = version
	changed := !bytes.Equal(b, d.bytes)
	d.bytes = b
	return b, changed, nil
}

// Agents is the shared agent registry.
type Agents struct {
	doc doc

	mu     sync.Mutex // guards agents
	agents *vetting.Agents
}

// OpenAgents opens the registry in st, creating an empty one if there is
// none. Get reads it again once its copy is older than every: 0 on posix,
// where a stat tells whether the file changed (storage.Versioner), so that
// a change is seen by the next submission; ReloadEvery where it is a
// database query.
func OpenAgents(ctx context.Context, st storage.State, every time.Duration) (*Agents, error) {
	empty, err := (&vetting.Agents{}).MarshalJSON()
	if err != nil {
		return nil, err
	}
	if created, err := st.Create(ctx, AgentsName, empty); err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	} else if created {
		slog.Info("created an empty agent registry", "name", AgentsName)
	}
	a := &Agents{doc: doc{st: st, name: AgentsName, every: every}}
	b, _, err := a.doc.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	if a.agents, err = vetting.ParseAgents(b); err != nil {
		return nil, fmt.Errorf("agent registry %s: %w", AgentsName, err)
	}
	return a, nil
}

// Get returns the registry, reloaded if it changed. A registry that no
// longer parses is logged and the previous one kept; a missing one
// registers no one, so that removing it never widens access.
func (a *Agents) Get(ctx context.Context) *vetting.Agents {
	b, changed, err := a.doc.get(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case errors.Is(err, storage.ErrNotExist):
		if a.agents.Len() > 0 {
			slog.Error("agent registry is gone: no agent may submit until it is restored", "name", AgentsName)
		}
		a.agents = &vetting.Agents{}
	case err != nil:
		slog.Error("agent registry not reloaded; keeping the previous one", "err", err)
	case changed:
		ag, err := vetting.ParseAgents(b)
		if err != nil {
			slog.Error("agent registry not reloaded; keeping the previous one", "err", err)
			break
		}
		a.agents = ag
		slog.Info("agent registry reloaded", "agents", ag.Len())
	}
	return a.agents
}

// Put replaces the registry after checking it.
func PutAgents(ctx context.Context, st storage.State, b []byte) (*vetting.Agents, error) {
	ag, err := vetting.ParseAgents(b)
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, AgentsName, b); err != nil {
		return nil, err
	}
	return ag, nil
}

// ErrReceiptKeyRetired is returned for a receipt key the history marks
// retired: a front end must not start, or sign, with it. Its operator
// runs vesperlog keys rotate-receipt, which gives the front end a new key.
var ErrReceiptKeyRetired = errors.New("receipt key is retired in the receipt key history")

// ReceiptKeys is the shared receipt key history: a receipts.KeySet in
// which every receipt key that ever served keeps its validity window, nbf
// from when it was added and exp from when it was retired.
type ReceiptKeys struct {
	doc doc

	mu  sync.Mutex       // guards set
	set *receipts.KeySet // parsed from the doc's bytes when they change
}

// OpenReceiptKeys adds pub (a receipt signer's public key) to the history
// in st, valid from now on, if it is not there, and returns the history.
// A key the history marks retired is refused with ErrReceiptKeyRetired;
// a key already there keeps its window (none, for one added before
// windows were kept).
func OpenReceiptKeys(ctx context.Context, st storage.State, pub jose.JSONWebKey) (*ReceiptKeys, error) {
	now := time.Now()
	_, err := swapReceiptKeys(ctx, st, func(set *receipts.KeySet) (bool, error) {
		if have := set.Key(pub.KeyID); len(have) > 0 {
			for _, k := range have {
				if k.Retired() {
					return false, fmt.Errorf("%w: %s, retired %s", ErrReceiptKeyRetired, pub.KeyID, k.Expires.UTC().Format(time.RFC3339))
				}
			}
			return false, nil
		}
		set.Keys = append(set.Keys, receipts.Key{JSONWebKey: pub, NotBefore: now})
		slog.Info("receipt key added to the history", "kid", pub.KeyID, "nbf", now.Unix())
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	r := &ReceiptKeys{doc: doc{st: st, name: ReceiptKeysName, every: ReloadEvery}}
	// Read once, so that CheckSigning has a copy if the backend fails later.
	if _, err := r.JWKS(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// RotateReceiptKey records in the history in st that old was retired at
// at and that next signs from at on, in one compare-and-swap: old gets
// exp = at unless it is already retired (a rotation resumed after a
// crash), and next is added with nbf = at unless it is already there. An
// old key missing from the history is added, retired, so that no key that
// may have signed is ever missing. A next key the history already retired
// is refused with ErrReceiptKeyRetired. It returns the history as stored.
func RotateReceiptKey(ctx context.Context, st storage.State, old, next jose.JSONWebKey, at time.Time) (*receipts.KeySet, error) {
	at = time.Unix(at.Unix(), 0) // NumericDate: whole seconds
	return swapReceiptKeys(ctx, st, func(set *receipts.KeySet) (bool, error) {
		changed := false
		for _, k := range set.Key(next.KeyID) {
			if k.Retired() {
				return false, fmt.Errorf("%w: the new key %s, retired %s", ErrReceiptKeyRetired, next.KeyID, k.Expires.UTC().Format(time.RFC3339))
			}
		}
		found := false
		for i := range set.Keys {
			k := &set.Keys[i]
			if k.KeyID != old.KeyID {
				continue
			}
			found = true
			if !k.Retired() {
				exp := at
				if exp.Before(k.NotBefore) {
					// A clock set back since the key was added: a window
					// still ends no earlier than it starts.
					exp = k.NotBefore
				}
				k.Expires = exp
				changed = true
			}
		}
		if !found {
			set.Keys = append(set.Keys, receipts.Key{JSONWebKey: old, Expires: at})
			changed = true
		}
		if len(set.Key(next.KeyID)) == 0 {
			set.Keys = append(set.Keys, receipts.Key{JSONWebKey: next, NotBefore: at})
			changed = true
		}
		return changed, nil
	})
}

// swapReceiptKeys applies change to the history in st (empty if there is
// none) and stores the result with a compare-and-swap, trying again when
// another writer won. change reports whether it changed anything; nothing
// is written if not. It returns the history as stored.
func swapReceiptKeys(ctx context.Context, st storage.State, change func(*receipts.KeySet) (bool, error)) (*receipts.KeySet, error) {
	for range swapTries {
		old, err := st.Get(ctx, ReceiptKeysName)
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("receipt key history: %w", err)
		}
		set := &receipts.KeySet{}
		if old != nil {
			if set, err = receipts.ParseKeySet(old); err != nil {
				return nil, fmt.Errorf("receipt key history %s: %w", ReceiptKeysName, err)
			}
		}
		changed, err := change(set)
		if err != nil {
			return nil, err
		}
		if !changed {
			return set, nil
		}
		b, err := json.MarshalIndent(set, "", "  ")
		if err != nil {
			return nil, err
		}
		ok, err := st.Swap(ctx, ReceiptKeysName, old, append(b, '\n'))
		if err != nil {
			return nil, fmt.Errorf("receipt key history: %w", err)
		}
		if ok {
			return set, nil
		}
	}
	return nil, errors.New("receipt key history: too many concurrent writers")
}

// JWKS returns every receipt key in the history with its window, as
// published at /.well-known/jwks.json.
func (r *ReceiptKeys) JWKS(ctx context.Context) (receipts.KeySet, error) {
	b, changed, err := r.doc.get(ctx)
	if err != nil {
		return receipts.KeySet{}, fmt.Errorf("receipt key history: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if changed || r.set == nil {
		set, err := receipts.ParseKeySet(b)
		if err != nil {
			return receipts.KeySet{}, fmt.Errorf("receipt key history %s: %w", ReceiptKeysName, err)
		}
		r.set = set
	}
	return *r.set, nil
}

// CheckSigning returns an error wrapping ErrReceiptKeyRetired if the
// history says the key kid may not sign a receipt issued at iat (it was
// retired, or iat is before its nbf), and nil otherwise. It is the check
// a server's receipts.Signer makes before each signature
// (receipts.WithKeyCheck). The history is read again at most every
// ReloadEvery; if it cannot be read, the last copy read decides.
func (r *ReceiptKeys) CheckSigning(kid string, iat time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := r.JWKS(ctx)
	if err != nil {
		r.mu.Lock()
		last := r.set
		r.mu.Unlock()
		if last == nil {
			slog.Error("receipt key history unreadable; signing with the key checked at start", "kid", kid, "err", err)
			return nil
		}
		set = *last
	}
	for _, k := range set.Key(kid) {
		if !k.Covers(iat) {
			// A 503: this front end must be restarted with its new key,
			// and another front end can answer meanwhile.
			return fmt.Errorf("%w: %w: key %s may not sign at %s, its window is %s; restart this front end with its new key", problem.ErrUnavailable, ErrReceiptKeyRetired, kid, iat.UTC().Format(time.RFC3339), k.Window())
		}
	}
	return nil
}
