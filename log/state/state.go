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

	"github.com/vesperlog/vesperlog/log/vetting"
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

	mu     sync.Mutex // guards the fields below
	loaded time.Time
	bytes  []byte
}

// get returns the document's bytes, reloading them if they are older than
// d.every, and whether they changed.
func (d *doc) get(ctx context.Context) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded.IsZero() && time.Since(d.loaded) < d.every {
		return d.bytes, false, nil
	}
	b, err := d.st.Get(ctx, d.name)
	if err != nil {
		return nil, false, err
	}
	d.loaded = time.Now()
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
// where a read of a small file costs less than the statement's signature
// check, ReloadEvery where it is a database query.
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

// ReceiptKeys is the shared receipt key history.
type ReceiptKeys struct {
	doc doc

	mu  sync.Mutex          // guards set
	set *jose.JSONWebKeySet // parsed from the doc's bytes when they change
}

// OpenReceiptKeys adds pub (a receipt signer's public key) to the history
// in st if it is not there, and returns the history.
func OpenReceiptKeys(ctx context.Context, st storage.State, pub jose.JSONWebKey) (*ReceiptKeys, error) {
	for range swapTries {
		old, err := st.Get(ctx, ReceiptKeysName)
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("receipt key history: %w", err)
		}
		var set jose.JSONWebKeySet
		if old != nil {
			if err := json.Unmarshal(old, &set); err != nil {
				return nil, fmt.Errorf("receipt key history %s: %w", ReceiptKeysName, err)
			}
		}
		if len(set.Key(pub.KeyID)) > 0 {
			return &ReceiptKeys{doc: doc{st: st, name: ReceiptKeysName, every: ReloadEvery}}, nil
		}
		set.Keys = append(set.Keys, pub)
		b, err := json.MarshalIndent(set, "", "  ")
		if err != nil {
			return nil, err
		}
		ok, err := st.Swap(ctx, ReceiptKeysName, old, append(b, '\n'))
		if err != nil {
			return nil, fmt.Errorf("receipt key history: %w", err)
		}
		if ok {
			slog.Info("receipt key added to the history", "kid", pub.KeyID)
			return &ReceiptKeys{doc: doc{st: st, name: ReceiptKeysName, every: ReloadEvery}}, nil
		}
	}
	return nil, errors.New("receipt key history: too many concurrent writers")
}

// JWKS returns every receipt key in the history, as published at
// /.well-known/jwks.json.
func (r *ReceiptKeys) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	b, changed, err := r.doc.get(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("receipt key history: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if changed || r.set == nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(b, &set); err != nil {
			return jose.JSONWebKeySet{}, fmt.Errorf("receipt key history %s: %w", ReceiptKeysName, err)
		}
		r.set = &set
	}
	return *r.set, nil
}
