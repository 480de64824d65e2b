package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Evidence is proof, or grounds to suspect, that a log showed two
// histories. It holds the signed checkpoints themselves, so a third party
// can check it with the log's key alone (CheckEvidence).
type Evidence struct {
	// Kind is "fork" (two signed checkpoints of one size with different
	// roots: proof), "inconsistent" (the log's consistency proof between
	// its two signed checkpoints does not verify), "rollback" (the log
	// served a smaller checkpoint than one it signed before) or
	// "split-view" (a witness holds a checkpoint inconsistent with the log's).
	Kind    string   `json:"kind"`
	Origin  string   `json:"origin"`
	Trusted string   `json:"trusted_checkpoint"`
	Offered string   `json:"offered_checkpoint"`
	Proof   []string `json:"consistency_proof,omitempty"`
	Source  string   `json:"offered_by,omitempty"`
	Detail  string   `json:"detail"`
}

func (e *Evidence) Error() string {
	return fmt.Sprintf("%s: log %s: %s", e.Kind, e.Origin, e.Detail)
}

// Write saves the evidence as JSON, atomically.
func (e *Evidence) Write(path string) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return keys.WriteFile(path, append(b, '\n'), 0o644)
}

// CheckEvidence lets a third party check evidence with the log's vkey: both
// checkpoints must carry valid log signatures. It reports whether the
// evidence is conclusive on its own: only two signed checkpoints of one
// size with different roots prove that the log showed two histories. The
// other kinds record what a client was served: for "inconsistent" and a
// split view of two sizes, the log owes a valid consistency proof between
// its two signed checkpoints (the one included did not verify); a
// "rollback" shows it served an older checkpoint after a newer one.
func CheckEvidence(b []byte, logVKey string) (ev *Evidence, conclusive bool, err error) {
	var e Evidence
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, false, fmt.Errorf("evidence: %w", err)
	}
	v, err := policy.NewLogVerifier(logVKey)
	if err != nil {
		return nil, false, err
	}
	var cps [2]*fmtlog.Checkpoint
	for i, raw := range []string{e.Trusted, e.Offered} {
		if cps[i], _, _, err = fmtlog.ParseCheckpoint([]byte(raw), v.Name(), v); err != nil {
			return nil, false, fmt.Errorf("evidence checkpoint %d does not verify: %w", i+1, err)
		}
	}
	t, o := cps[0], cps[1]
	sameSizeFork := t.Size == o.Size && string(t.Hash) != string(o.Hash)
	switch e.Kind {
	case "fork":
		if !sameSizeFork {
			return nil, false, errors.New("evidence: the checkpoints are not of one size with different roots")
		}
		return &e, true, nil
	case "split-view", "inconsistent":
		if sameSizeFork && e.Kind == "split-view" {
			return &e, true, nil
		}
		older, newer := t, o
		if older.Size > newer.Size {
			older, newer = newer, older
		}
		if older.Size == newer.Size {
			return nil, false, errors.New("evidence: one size, one root: nothing contradicts")
		}
		var p [][]byte
		for _, s := range e.Proof {
			h, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, false, fmt.Errorf("evidence proof: %w", err)
			}
			p = append(p, h)
		}
		if proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Hash, newer.Hash) == nil {
			return nil, false, errors.New("evidence: the proof shows the checkpoints consistent")
		}
		return &e, false, nil
	case "rollback":
		if o.Size >= t.Size {
			return nil, false, errors.New("evidence: the offered checkpoint is not smaller")
		}
		return &e, false, nil
	}
	return nil, false, fmt.Errorf("evidence: unknown kind %q", e.Kind)
}

// statePath is where the trusted checkpoint of origin is kept in dir.
func statePath(dir, origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(dir, hex.EncodeToString(h[:])+".checkpoint")
}

// Update moves the trusted state of the log kept in stateDir to its latest
// checkpoint, if that is consistent with the trusted one, and returns both
// (old is nil on first use). A contradiction is returned as *Evidence and
// changes nothing. The consistency step is Tessera's LogStateTracker; the
// rollback and same-size checks are ours.
func (l *Log) Update(ctx context.Context, stateDir string) (old, latest *policy.Checkpoint, err error) {
	path := statePath(stateDir, l.Origin)
	oldRaw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading trusted state: %w", err)
	}
	if oldRaw != nil {
		if old, err = l.verify(oldRaw); err != nil {
			return nil, nil, fmt.Errorf("trusted state %s: %w", path, err)
		}
	}
	logKey, ok := l.Policy.Log(l.Origin)
	if !ok {
		return nil, nil, fmt.Errorf("log %s is not in the policy", l.Origin)
	}
	var fetched []byte
	var fetchedCP *policy.Checkpoint
	consensus := func(ctx context.Context, _ note.Verifier, origin string) (*fmtlog.Checkpoint, []byte, *note.Note, error) {
		cp, raw, err := l.Checkpoint(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		fetched, fetchedCP = raw, cp
		return &fmtlog.Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash[:]}, raw, cp.Note, nil
	}
	lst, err := tclient.NewLogStateTracker(ctx, l.Fetch.ReadTile, oldRaw, logKey.Verifier, l.Origin, consensus)
	if err == nil && oldRaw != nil {
		_, _, _, err = lst.Update(ctx)
	}
	var inc tclient.ErrInconsistency
	switch {
	case errors.As(err, &inc):
		return nil, nil, &Evidence{Kind: "inconsistent", Origin: l.Origin, Trusted: string(inc.SmallerRaw), Offered: string(inc.LargerRaw),
			Proof: encodeProof(inc.Proof), Detail: fmt.Sprintf("the log's consistency proof does not verify: %v", inc.Wrapped)}
	case err != nil:
		return nil, nil, err
	}
	if old != nil {
		switch {
		case fetchedCP.Size < old.Size:
			return nil, nil, &Evidence{Kind: "rollback", Origin: l.Origin, Trusted: string(oldRaw), Offered: string(fetched),
				Detail: fmt.Sprintf("the log serves size %d after signing size %d", fetchedCP.Size, old.Size)}
		case fetchedCP.Size == old.Size && fetchedCP.Hash != old.Hash:
			return nil, nil, &Evidence{Kind: "fork", Origin: l.Origin, Trusted: string(oldRaw), Offered: string(fetched),
				Detail: fmt.Sprintf("two signed checkpoints of size %d with different roots", old.Size)}
		case fetchedCP.Size == old.Size:
			return old, old, nil
		}
	}
	if err := keys.MkdirAll(stateDir, 0o700); err != nil { // synced: a lost state would accept a rollback
		return nil, nil, err
	}
	if err := keys.WriteFile(path, fetched, 0o644); err != nil {
		return nil, nil, fmt.Errorf("saving trusted state: %w", err)
	}
	return old, fetchedCP, nil
}

// CompareWith checks the log's checkpoint against another view of it, such
// as the one a witness serves (C2SP tlog-witness monitoring read): whichever
// is smaller must be a prefix of the larger, proven from the log's tiles.
func (l *Log) CompareWith(ctx context.Context, otherRaw []byte, source string) (*policy.Checkpoint, *policy.Checkpoint, error) {
	mine, mineRaw, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Another view needs only the log's signature to be evidence: the
	// witness quorum is what the log's own checkpoint must meet.
	lp, err := l.Policy.LogOnly(l.Origin)
	if err != nil {
		return nil, nil, err
	}
	other, err := lp.Verify(otherRaw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s's checkpoint: %w", source, err)
	}
	older, newer := other, mine
	if older.Size > newer.Size {
		older, newer = newer, older
	}
	p, err := l.VerifyConsistency(ctx, older, newer)
	if err != nil {
		return nil, nil, &Evidence{Kind: "split-view", Origin: l.Origin, Trusted: string(mineRaw), Offered: string(otherRaw), Source: source,
			Proof: encodeProof(p), Detail: fmt.Sprintf("the log's checkpoint (size %d) and %s's (size %d) are not consistent: %v", mine.Size, source, other.Size, err)}
	}
	return mine, other, nil
}

func encodeProof(p [][]byte) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}
