package policy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a checkpoint that satisfied a policy.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [32]byte
	// Cosigners are the policy names of the witnesses whose cosignature
	// verified, sorted. They may be more than the quorum needed.
	Cosigners []string
	// Note is the opened note; Note.Sigs holds the verified log signature
	// and cosignatures, Note.UnverifiedSigs the ignored unknown ones.
	Note *note.Note
}

// Verify checks a signed checkpoint note (tlog-checkpoint text followed by
// signature lines). In order, each failing with its own sentinel error:
// the note and checkpoint body must be well formed (ErrMalformedCheckpoint);
// the origin must be one of the policy's logs (ErrUnknownLog); that log's
// signature must be present and valid (ErrLogSignature); every signature
// line naming a policy witness must verify (ErrCosignature); and the
// witnesses whose cosignature verified must satisfy the quorum (ErrQuorum).
// Signatures by keys not in the policy are ignored, as signed-note requires.
func (p *Policy) Verify(signedCheckpoint []byte) (*Checkpoint, error) {
	text, err := noteText(signedCheckpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	c, err := parseCheckpoint(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	logs := p.LogKeys(c.Origin)
	if len(logs) == 0 {
		return nil, fmt.Errorf("%w: origin %q", ErrUnknownLog, c.Origin)
	}

	// The log's signature is checked on its own first, so that a tampered
	// body is reported as ErrLogSignature whatever the order of the
	// signature lines; then again with the witnesses' keys. A log with
	// several keys needs a valid signature by one of them, and none that
	// fails.
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	if _, err := note.Open(signedCheckpoint, known{p, logs, false}); err != nil {
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("%w: no signature by log key %s", ErrLogSignature, logKeyIDs(logs))
		}
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("%w: signature by log key %s+%08x does not verify", ErrLogSignature, invalid.Name, invalid.Hash)
		}
		// The text passed noteText and parseCheckpoint, so note.Open
		// objects to the signature lines (bad syntax, or more than 100).
		return nil, fmt.Errorf("%w: signature lines: %v", ErrMalformedCheckpoint, err)
	}
	n, err := note.Open(signedCheckpoint, known{p, logs, true})
	switch {
	case err == nil:
	case errors.As(err, &invalid):
		r := p.byKey[keyID{invalid.Name, invalid.Hash}]
		return nil, fmt.Errorf("%w: %s (key %s+%08x): signature does not verify", ErrCosignature, p.describe(r), invalid.Name, invalid.Hash)
	default:
		// Not reachable: the first Open accepted the same bytes and a
		// verified log signature.
		return nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}

	logSigned := false
	cosigned := make([]bool, len(p.witnesses))
	for _, s := range n.Sigs {
		r, ok := p.byKey[keyID{s.Name, s.Hash}]
		switch {
		case !ok:
		case r.kind == refLog:
			logSigned = true // known only lists this origin's log keys
		case r.kind == refWitness:
			cosigned[r.i] = true
		}
	}
	if !logSigned {
		return nil, fmt.Errorf("%w: no signature by log key %s", ErrLogSignature, logKeyIDs(logs)) // not reachable, as above
	}
	c.Note = n
	for i, ok := range cosigned {
		if ok {
			c.Cosigners = append(c.Cosigners, p.witnesses[i].Name)
		}
	}
	slices.Sort(c.Cosigners)
	if sat := p.evaluate(cosigned); !p.satisfied(p.quorum, cosigned, sat) {
		return nil, fmt.Errorf("%w: verified cosigners %q; %s", ErrQuorum, c.Cosigners, p.explain(cosigned, sat))
	}
	return c, nil
}

// known is the note.Verifiers of one Verify: the checkpoint's log keys
// and, with witnesses set, the policy's witnesses, looked up in the map
// Parse built rather than in a fresh note.VerifierList per call. Other
// logs' keys are never known: their signatures are as unknown as anyone
// else's.
type known struct {
	p         *Policy
	logs      []Log
	witnesses bool
}

func (k known) Verifier(name string, hash uint32) (note.Verifier, error) {
	for _, l := range k.logs {
		if name == l.Verifier.Name() && hash == l.Verifier.KeyHash() {
			return l.Verifier, nil
		}
	}
	if r, ok := k.p.byKey[keyID{name, hash}]; ok && k.witnesses && r.kind == refWitness {
		return k.p.witnesses[r.i].Verifier, nil
	}
	return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
}

// logKeyIDs names a log's keys for an error: "name+id" or "name+id or name+id".
func logKeyIDs(logs []Log) string {
	ids := make([]string, len(logs))
	for i, l := range logs {
		ids[i] = fmt.Sprintf("%s+%08x", l.Verifier.Name(), l.Verifier.KeyHash())
	}
	return strings.Join(ids, " or ")
}

// noteText applies signed-note's framing rules that precede any signature
// check (the same ones note.Open applies) and returns the note text, so
// that the body can be parsed and its log found first.
func noteText(msg []byte) ([]byte, error) {
	for i := 0; i < len(msg); {
		r, size := utf8.DecodeRune(msg[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("note is not valid UTF-8 at byte %d", i)
		}
		if r < 0x20 && r != '\n' {
			return nil, fmt.Errorf("note has control character 0x%02x at byte %d", r, i)
		}
		i += size
	}
	// The text ends at the last blank line; the signatures follow it.
	split := bytes.LastIndex(msg, []byte("\n\n"))
	if split < 0 {
		return nil, errors.New("note has no blank line before its signatures")
	}
	if sigs := msg[split+2:]; len(sigs) == 0 {
		return nil, errors.New("note has no signature lines")
	} else if sigs[len(sigs)-1] != '\n' {
		return nil, errors.New("note does not end with a newline")
	}
	return msg[:split+1], nil
}

// parseCheckpoint parses a note text as a tlog-checkpoint body, strictly:
// formats/log.Checkpoint.Unmarshal is not used because it accepts leading
// zeroes in the size, a hash of any length or non-canonical base64, and
// empty extension lines.
func parseCheckpoint(text []byte) (*Checkpoint, error) {
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, errors.New("checkpoint body does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("checkpoint body has %d lines, want at least 3 (origin, size, hash)", len(lines))
	}
	c := &Checkpoint{Origin: lines[0]}
	if c.Origin == "" {
		return nil, errors.New("checkpoint origin line is empty")
	}
	size := lines[1]
	if size == "" || strings.Trim(size, "0123456789") != "" || (len(size) > 1 && size[0] == '0') {
		return nil, fmt.Errorf("checkpoint size %q is not a decimal number without leading zeroes", size)
	}
	var err error
	if c.Size, err = strconv.ParseUint(size, 10, 64); err != nil {
		return nil, fmt.Errorf("checkpoint size %q does not fit in 64 bits", size)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return nil, fmt.Errorf("checkpoint hash %q is not the canonical base64 of 32 bytes", lines[2])
	}
	copy(c.Hash[:], h)
	for i, ext := range lines[3:] {
		if ext == "" {
			return nil, fmt.Errorf("checkpoint extension line %d is empty", i+1)
		}
	}
	return c, nil
}

// evaluate returns, for each group, whether it witnessed the checkpoint.
// A group can only name earlier definitions, so one pass in definition
// order settles every group; this is linear even when groups share
// members, where naive recursion would be exponential.
func (p *Policy) evaluate(cosigned []bool) []bool {
	sat := make([]bool, len(p.groups))
	for i, g := range p.groups {
		n := 0
		for _, m := range g.members {
			if p.satisfied(m, cosigned, sat) {
				n++
			}
		}
		sat[i] = n >= g.k
	}
	return sat
}

func (p *Policy) satisfied(r ref, cosigned, sat []bool) bool {
	switch r.kind {
	case refNone:
		return true
	case refWitness:
		return cosigned[r.i]
	case refGroup:
		return sat[r.i]
	}
	return false
}

// explain says what the quorum needed: the quorum and each group it
// reaches, once each (a recursive expansion could be exponential in size).
func (p *Policy) explain(cosigned, sat []bool) string {
	if p.quorum.kind == refWitness {
		return fmt.Sprintf("quorum needs a cosignature from witness %q", p.name(p.quorum))
	}
	reach := make([]bool, len(p.groups))
	reach[p.quorum.i] = true
	// Groups only name earlier groups, so walking backwards from the
	// quorum visits each reachable group after everything that names it.
	for i := p.quorum.i; i >= 0; i-- {
		if !reach[i] {
			continue
		}
		for _, m := range p.groups[i].members {
			if m.kind == refGroup {
				reach[m.i] = true
			}
		}
	}
	var parts []string
	for i := p.quorum.i; i >= 0; i-- {
		if !reach[i] {
			continue
		}
		g := p.groups[i]
		var names []string
		have := 0
		for _, m := range g.members {
			names = append(names, p.name(m))
			if p.satisfied(m, cosigned, sat) {
				have++
			}
		}
		status := "met"
		if !sat[i] {
			status = "not met"
		}
		parts = append(parts, fmt.Sprintf("group %q needs %d of %q, has %d (%s)", g.name, g.k, names, have, status))
	}
	return fmt.Sprintf("quorum %q: %s", p.name(p.quorum), strings.Join(parts, "; "))
}

// QuorumMet reports whether cosignatures from the named witnesses would
// satisfy the quorum (the quorum "none" always is): for a server that
// knows which witnesses answered, not which signatures verify.
func (p *Policy) QuorumMet(witnesses []string) bool {
	cosigned := make([]bool, len(p.witnesses))
	for i, w := range p.witnesses {
		cosigned[i] = slices.Contains(witnesses, w.Name)
	}
	return p.satisfied(p.quorum, cosigned, p.evaluate(cosigned))
}
