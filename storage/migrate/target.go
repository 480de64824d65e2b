package migrate

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	fmtlog "github.com/transparency-dev/formats/log"

	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// target is the backend copied into.
type target struct {
	be  storage.Backend
	cfg storage.Config
}

// objects reads a log's resources on the target by their paths below the
// log's root: tiles, entry bundles and issuers sit side by side there.
func (t *target) objects(log string) readFunc {
	o := t.be.Objects(log)
	return o.Get
}

// check refuses a target that holds something other than the source's
// logs and state. It writes nothing.
func (t *target) check(ctx context.Context, src *source) error {
	st := t.be.State()
	for _, l := range src.logs {
		b, err := state.ReadBinding(ctx, st, l.name())
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if b != nil && *b != l.binding {
			return fmt.Errorf("the target's %s log is %q with key %q; the source's is %q with key %q",
				l.name(), b.Origin, b.VKey, l.binding.Origin, l.binding.VKey)
		}
		if l.present {
			if err := t.checkCheckpoint(ctx, l); err != nil {
				return err
			}
		}
	}
	if src.agents != nil {
		cur, err := st.Get(ctx, state.AgentsName)
		switch {
		case errors.Is(err, storage.ErrNotExist):
		case err != nil:
			return fmt.Errorf("target: %w", err)
		default:
			if err := replaceableAgents(cur, src.agents); err != nil {
				return err
			}
		}
	}
	if _, _, err := t.receiptKeys(ctx, src); err != nil {
		return err
	}
	return nil
}

// checkCheckpoint refuses a target whose log has a published checkpoint
// (a server ran on it) that is not of the source's log at or below the
// source's size. Such a target would be overwritten or forked.
func (t *target) checkCheckpoint(ctx context.Context, l *sourceLog) error {
	raw, err := t.be.Objects(l.name()).Get(ctx, "checkpoint")
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("target %s log: %w", l.name(), err)
	}
	v, err := policy.NewLogVerifier(l.binding.VKey)
	if err != nil {
		return err
	}
	cp, _, _, err := fmtlog.ParseCheckpoint(raw, l.binding.Origin, v)
	if err != nil {
		return fmt.Errorf("the target already has a %s log, and its checkpoint is not the source log's: %w", l.name(), err)
	}
	if cp.Size > l.size {
		return fmt.Errorf("the target's %s log has size %d, beyond the source's %d: it has grown since it was migrated", l.name(), cp.Size, l.size)
	}
	root, err := rootFromTiles(ctx, l.read, cp.Size)
	if err != nil {
		return fmt.Errorf("source %s log: %w", l.name(), err)
	}
	if !bytes.Equal(root, cp.Hash) {
		return fmt.Errorf("the target's %s log at size %d has root %x, the source's %x: it is another log", l.name(), cp.Size, cp.Hash, root)
	}
	return nil
}

// replaceableAgents refuses to replace a target's agent registry unless it
// is the source's or empty (as a server's first start creates it).
func replaceableAgents(cur, src []byte) error {
	if bytes.Equal(cur, src) {
		return nil
	}
	ag, err := vetting.ParseAgents(cur)
	if err != nil {
		return fmt.Errorf("the target's %s does not parse: %w", state.AgentsName, err)
	}
	if ag.Len() > 0 {
		return fmt.Errorf("the target already has another agent registry (%s, %d agents)", state.AgentsName, ag.Len())
	}
	return nil
}

func (t *target) copyIssuers(ctx context.Context, src *source) (int, error) {
	o := t.be.Objects(STICTLog)
	for _, name := range src.issuers {
		der, err := src.issuer(name)
		if err != nil {
			return 0, err
		}
		if err := o.Put(ctx, "issuer/"+name, der, "application/pkix-cert"); err != nil {
			return 0, fmt.Errorf("target: %w", err)
		}
	}
	return len(src.issuers), nil
}

func (t *target) copyAgents(ctx context.Context, src *source) error {
	if src.agents == nil {
		return nil
	}
	st := t.be.State()
	created, err := st.Create(ctx, state.AgentsName, src.agents)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if created {
		return nil
	}
	cur, err := st.Get(ctx, state.AgentsName)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := replaceableAgents(cur, src.agents); err != nil {
		return err
	}
	ok, err := st.Swap(ctx, state.AgentsName, cur, src.agents)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !ok {
		return fmt.Errorf("the target's %s changed while it was being replaced", state.AgentsName)
	}
	return nil
}

// receiptKeys returns the target's receipt key history (nil if it has
// none) and the history with the source's keys added, refusing a key ID
// that names two keys. A key in both gets the earlier start of its two
// windows (none if either has none, so that every receipt either history
// accepted still verifies) and the earlier exp of the two, so that a key
// retired in either history stays retired.
func (t *target) receiptKeys(ctx context.Context, src *source) (old, merged []byte, err error) {
	old, err = t.be.State().Get(ctx, state.ReceiptKeysName)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		return nil, src.rkeys, nil // the source's as it is (nil: none)
	case err != nil:
		return nil, nil, fmt.Errorf("target: %w", err)
	}
	set, err := receipts.ParseKeySet(old)
	if err != nil {
		return nil, nil, fmt.Errorf("the target's %s: %w", state.ReceiptKeysName, err)
	}
	changed := 0
	for _, k := range src.rkeySet.Keys {
		i := slices.IndexFunc(set.Keys, func(h receipts.Key) bool { return h.KeyID == k.KeyID })
		if i < 0 {
			set.Keys = append(set.Keys, k)
			changed++
			continue
		}
		have := &set.Keys[i]
		a, err1 := have.Thumbprint(crypto.SHA256)
		b, err2 := k.Thumbprint(crypto.SHA256)
		if err := errors.Join(err1, err2); err != nil || !bytes.Equal(a, b) {
			return nil, nil, fmt.Errorf("the target's %s has another key with kid %q", state.ReceiptKeysName, k.KeyID)
		}
		if !have.NotBefore.IsZero() && (k.NotBefore.IsZero() || k.NotBefore.Before(have.NotBefore)) {
			have.NotBefore = k.NotBefore
			changed++
		}
		if !k.Expires.IsZero() && (have.Expires.IsZero() || k.Expires.Before(have.Expires)) {
			have.Expires = k.Expires
			changed++
		}
		// Each window was whole (ParseKeySet), so the earlier start is
		// never after the earlier end.
	}
	if changed == 0 {
		return old, old, nil
	}
	merged, err = json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return old, append(merged, '\n'), nil
}

// swapTries bounds the compare-and-swap loop of mergeReceiptKeys: a lost
// race means a server on the target added its key meanwhile.
const swapTries = 20

// mergeReceiptKeys adds the source's receipt keys to the target's history
// and returns how many keys it then has (-1: neither has a history).
func (t *target) mergeReceiptKeys(ctx context.Context, src *source) (int, error) {
	for range swapTries {
		old, merged, err := t.receiptKeys(ctx, src)
		if err != nil {
			return 0, err
		}
		if merged == nil {
			return -1, nil
		}
		if !bytes.Equal(old, merged) {
			ok, err := t.be.State().Swap(ctx, state.ReceiptKeysName, old, merged)
			if err != nil {
				return 0, fmt.Errorf("target: %w", err)
			}
			if !ok {
				continue
			}
		}
		set, err := receipts.ParseKeySet(merged)
		if err != nil {
			return 0, err
		}
		return len(set.Keys), nil
	}
	return 0, errors.New("target: the receipt key history keeps changing")
}
