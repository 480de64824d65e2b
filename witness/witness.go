// Package witness is a C2SP tlog-witness (https://c2sp.org/tlog-witness):
// it cosigns checkpoints of the logs it is configured for, after checking
// each is consistent with the last one it cosigned, and serves the latest
// cosigned checkpoint of each log for monitors.
//
// Its key (GenerateKey, ParseKey) is Ed25519, cosigning as cosignature/v1,
// or ML-DSA-44, cosigning as https://c2sp.org/tlog-cosignature specifies
// for add-checkpoint: the subtree [0, size) with the time of signing.
// Either verifies with witness/policy; TestAddCheckpoint runs the spec's
// cases for both.
//
// State is one file per log, <state>/<hex SHA-256 of origin>, holding the
// whole signed checkpoint the witness last cosigned (log signatures and its
// own cosignature), so that a misbehaving log can be proven so from it.
// A file store with fsync and rename is enough: the witness keeps one small
// record per log, needs no queries, and runs as one process, which an
// exclusive lock on the state directory enforces. Updates of one log are
// serialized by a per-log mutex, and the durability order is: check the
// request against the stored size, write the new record to a temporary
// file, fsync it, rename it over the old one, fsync the directory, and only
// then answer with the cosignature. A crash before the rename leaves the
// old record; after it, the new one.
//
// The status codes follow the spec at HEAD; TestAddCheckpoint has a row per
// case.
package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Errors of AddCheckpoint, one per status code of the spec; each wraps
// the problem class that gives it that status.
var (
	ErrMalformed  = fmt.Errorf("malformed add-checkpoint request: %w", problem.ErrBadRequest) // 400
	ErrSignature  = fmt.Errorf("no trusted log signature verifies: %w", problem.ErrForbidden) // 403
	ErrUnknownLog = fmt.Errorf("unknown log: %w", problem.ErrNotFound)                        // 404
	ErrProof      = fmt.Errorf("checkpoint is not consistent: %w", problem.ErrUnverifiable)   // 422
)

// ConflictError is the 409 answer: the request's old size is not the size
// of the witness's latest cosigned checkpoint, which Size is.
type ConflictError struct{ Size uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("old size does not match the latest cosigned size %d", e.Size)
}

// maxBody bounds an add-checkpoint request: 63 proof lines and a
// checkpoint with the 16 signatures signed-note says a verifier must
// accept, post-quantum ones of up to nearly 5 kB included.
const maxBody = 128 << 10

// Witness cosigns checkpoints. Its methods are safe for concurrent use.
type Witness struct {
	signer  note.Signer
	logs    *policy.Policy // the logs it witnesses: origin and vkey
	dir     string
	dirLock *os.File // holds the lock on dir while the witness lives

	// mu guards locks; each per-log mutex serializes that log's
	// check-and-update, held from reading the stored size to the fsync of
	// the new record.
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns a witness signing with signer (the Signer of a Key, or any
// cosignature/v1 signer), witnessing the logs listed in logs, with its
// state in dir. It takes an exclusive lock on dir for the life of the
// process.
func New(signer note.Signer, logs *policy.Policy, dir string) (*Witness, error) {
	if _, ok := signer.(mldsaSigner); ok {
		for _, l := range logs.Logs() {
			if len(l.Origin) > maxMLDSAString {
				return nil, fmt.Errorf("log %.40q... has an origin over %d bytes, which an ML-DSA-44 cosignature cannot cover", l.Origin, maxMLDSAString)
			}
		}
	}
	lock, err := keys.LockDir(dir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	return &Witness{dirLock: lock, signer: signer, logs: logs, dir: dir, locks: map[string]*sync.Mutex{}}, nil
}

func (w *Witness) lock(origin string) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.locks[origin]
	if !ok {
		m = &sync.Mutex{}
		w.locks[origin] = m
	}
	return m
}

// request is a parsed add-checkpoint body.
type request struct {
	old        uint64
	proof      [][]byte
	checkpoint []byte
}

func parseRequest(b []byte) (*request, error) {
	if len(b) > maxBody {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrMalformed, maxBody)
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	oldStr, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return nil, fmt.Errorf("%w: first line is not \"old <size>\"", ErrMalformed)
	}
	if oldStr == "" || (len(oldStr) > 1 && oldStr[0] == '0') || oldStr[0] == '+' {
		return nil, fmt.Errorf("%w: old size %q is not a decimal without leading zeroes", ErrMalformed, oldStr)
	}
	old, err := strconv.ParseUint(oldStr, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: old size %q: %v", ErrMalformed, oldStr, err)
	}
	r := &request{old: old, checkpoint: cp}
	if len(lines)-1 > 63 {
		return nil, fmt.Errorf("%w: %d proof lines, at most 63", ErrMalformed, len(lines)-1)
	}
	for i, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 SHA-256 hash", ErrMalformed, i+1)
		}
		r.proof = append(r.proof, h)
	}
	return r, nil
}

// AddCheckpoint handles an add-checkpoint request body and returns the
// cosignature lines to answer with. Errors: ErrMalformed (400),
// ErrSignature (403), ErrUnknownLog (404), *ConflictError (409), ErrProof
// (422). The new checkpoint is durably stored before it returns.
func (w *Witness) AddCheckpoint(body []byte) ([]byte, error) {
	r, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	cp, err := w.logs.Verify(r.checkpoint)
	switch {
	case errors.Is(err, policy.ErrUnknownLog):
		return nil, fmt.Errorf("%w: %v", ErrUnknownLog, err)
	case errors.Is(err, policy.ErrMalformedCheckpoint):
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	origin := cp.Origin
	if r.old > cp.Size {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint's %d", ErrMalformed, r.old, cp.Size)
	}

	m := w.lock(origin)
	m.Lock()
	defer m.Unlock()
	prev, err := w.latest(origin)
	if err != nil {
		return nil, err
	}
	var prevSize uint64
	if prev != nil {
		prevSize = prev.Size
	}
	if r.old != prevSize {
		return nil, &ConflictError{Size: prevSize}
	}
	if cp.Size == 0 && !bytes.Equal(cp.Hash[:], rfc6962.DefaultHasher.EmptyRoot()) {
		return nil, fmt.Errorf("%w: a size-0 checkpoint must have the empty tree's root", ErrProof)
	}
	switch {
	case r.old == 0 && len(r.proof) != 0:
		return nil, fmt.Errorf("%w: a proof from size 0 must be empty", ErrProof)
	case r.old == 0:
	case r.old == cp.Size:
		if prev.Hash != cp.Hash || len(r.proof) != 0 {
			return nil, fmt.Errorf("%w: same size %d with another root hash, or a proof", ErrProof, cp.Size)
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, r.old, cp.Size, r.proof, prev.Hash[:], cp.Hash[:]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrProof, err)
		}
	}

	// Cosign the note as received (its log signatures verified), keep it
	// whole, and persist it before answering.
	n := cp.Note
	n.UnverifiedSigs = nil
	signed, err := note.Sign(n, w.signer)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	if err := keys.WriteFile(w.path(origin), signed, 0o600); err != nil {
		return nil, fmt.Errorf("persisting the cosigned checkpoint: %w", err)
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	var out []byte
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("— "+w.signer.Name()+" ")) {
			out = append(out, line...)
		}
	}
	return out, nil
}

// Checkpoint returns the latest cosigned checkpoint of the log whose
// origin hashes to originHash (lowercase hex SHA-256), for the monitoring
// read, or ErrUnknownLog.
func (w *Witness) Checkpoint(originHash string) ([]byte, error) {
	for _, l := range w.logs.Logs() {
		h := sha256.Sum256([]byte(l.Origin))
		if hex.EncodeToString(h[:]) != originHash {
			continue
		}
		b, err := os.ReadFile(w.path(l.Origin))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no checkpoint of %q cosigned yet", ErrUnknownLog, l.Origin)
		}
		return b, err
	}
	return nil, fmt.Errorf("%w: no log with origin hash %s", ErrUnknownLog, originHash)
}

// Cosigner returns the witness's key name.
func (w *Witness) Cosigner() string { return w.signer.Name() }

func (w *Witness) path(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return filepath.Join(w.dir, hex.EncodeToString(h[:]))
}

// latest reads the stored checkpoint of origin (nil if none), checking it
// still verifies: state is trusted only as far as it can be checked.
func (w *Witness) latest(origin string) (*policy.Checkpoint, error) {
	b, err := os.ReadFile(w.path(origin))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state of %q: %w", origin, err)
	}
	cp, err := w.logs.Verify(b)
	if err != nil {
		return nil, fmt.Errorf("stored checkpoint of %q does not verify: %w", origin, err)
	}
	return cp, nil
}
