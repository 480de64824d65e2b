package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Limits on what Parse accepts. The spec lets an implementation bound
// policy complexity and recommends supporting at least 32 logs, 32
// witnesses and 32 groups; these are eight times that, and they keep the
// cost of parsing and of every Verify small and predictable on a server
// that parses policies it did not write.
const (
	MaxPolicySize = 64 << 10 // bytes of policy text
	MaxLines      = 1000     // lines, counting blank and comment lines
	MaxLogs       = 256
	MaxWitnesses  = 256
	MaxGroups     = 256
)

// Sentinel errors. Every error from this package wraps exactly one of them
// (with detail), so callers can tell with errors.Is which check failed.
var (
	// ErrMalformedPolicy: the policy text (or a vkey given to ForLog)
	// breaks the tlog-policy syntax or rules, or a limit above.
	ErrMalformedPolicy = errors.New("malformed tlog-policy")
	// ErrMalformedCheckpoint: the signed note or its checkpoint body is
	// not well formed (signed-note, tlog-checkpoint).
	ErrMalformedCheckpoint = errors.New("malformed checkpoint")
	// ErrUnknownLog: the checkpoint's origin is not a log of the policy.
	ErrUnknownLog = errors.New("checkpoint origin is not a log in the policy")
	// ErrLogSignature: the log's signature is missing or does not verify.
	ErrLogSignature = errors.New("log signature missing or invalid")
	// ErrCosignature: a signature line names a policy witness (key name and
	// key ID both match) but does not verify. signed-note says such a note
	// SHOULD be rejected as a whole, so Verify does, rather than merely not
	// counting the witness.
	ErrCosignature = errors.New("invalid cosignature from a policy witness")
	// ErrQuorum: the cosignatures that verified do not satisfy the quorum.
	ErrQuorum = errors.New("cosignatures do not satisfy the policy quorum")
)

// Policy is a parsed tlog-policy: a set of logs, a set of named witnesses,
// named groups of witnesses and groups, and the quorum. It is immutable and
// safe for concurrent use.
type Policy struct {
	logs      []Log
	witnesses []Witness
	groups    []group
	quorum    ref

	byOrigin map[string][]int // the keys of each log, in definition order
	byName   map[string]ref   // witness and group names (one namespace)
	byKey    map[keyID]ref    // signature line (key name, key ID) -> log or witness
	byPub    map[string]ref   // raw public key -> log or witness, for duplicates
}

// Log is a log key of the policy. Origin is the key name of VKey, which
// the policy requires to be the log's checkpoint origin. A log may have
// more than one key (one per signature type); each is a Log.
type Log struct {
	Origin   string
	VKey     string // note vkey (type 0x01, or 0x05 for an STI-CT log), as written in the policy
	URL      string // optional, application specific
	Verifier note.Verifier
	typ      byte
}

// Witness is a witness of the policy. Name is the policy-local name used by
// groups and the quorum; the cosigner's key name is the one inside VKey.
type Witness struct {
	Name     string
	VKey     string // cosignature vkey: Ed25519 (type 0x04) or ML-DSA-44 (0x06), as written
	URL      string // optional, application specific
	Verifier note.Verifier
}

type refKind uint8

const (
	refNone refKind = iota // the predefined quorum "none"
	refWitness
	refGroup
	refLog // only in byKey
)

// ref names a quorum or group member: a witness or group by index.
type ref struct {
	kind refKind
	i    int
}

type group struct {
	name      string
	threshold string // as written: "all", "any" or the decimal k; kept for String
	k         int
	members   []ref
}

type keyID struct {
	name string
	hash uint32
}

// noneName is the predefined name that means "no cosignatures needed".
const noneName = "none"

// Parse parses a tlog-policy strictly. Errors wrap ErrMalformedPolicy and
// say the line number and what is wrong.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxPolicySize {
		return nil, fmt.Errorf("%w: policy is %d bytes, limit %d", ErrMalformedPolicy, len(b), MaxPolicySize)
	}
	nl := bytes.Count(b, []byte("\n"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: line 1: empty policy (a quorum line is required)", ErrMalformedPolicy)
	}
	if b[len(b)-1] != '\n' {
		// The spec terminates every line with a newline; a missing one is
		// often a truncated file, which a strict parser must not accept.
		return nil, fmt.Errorf("%w: line %d: last line is not terminated by a newline", ErrMalformedPolicy, nl+1)
	}
	if nl > MaxLines {
		return nil, fmt.Errorf("%w: line %d: more than %d lines", ErrMalformedPolicy, MaxLines+1, MaxLines)
	}
	p := newPolicy()
	quorumLine := 0
	for i, line := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		n := i + 1
		if err := checkOctets(line); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedPolicy, n, err)
		}
		f := fields(string(line))
		if len(f) == 0 || f[0][0] == '#' {
			continue // blank or comment line
		}
		var err error
		switch f[0] {
		case "log":
			err = p.parseLog(f)
		case "witness":
			err = p.parseWitness(f)
		case "group":
			err = p.parseGroup(f)
		case "quorum":
			if quorumLine != 0 {
				err = fmt.Errorf("second quorum line (the first is line %d); exactly one is allowed", quorumLine)
				break
			}
			err = p.parseQuorum(f)
			quorumLine = n
		default:
			err = fmt.Errorf("unknown keyword %q (want log, witness, group or quorum)", f[0])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedPolicy, n, err)
		}
	}
	if quorumLine == 0 {
		return nil, fmt.Errorf("%w: line %d: end of policy without a quorum line (use \"quorum none\" for no witnesses)", ErrMalformedPolicy, nl)
	}
	return p, nil
}

// ForLog returns a policy of the logs with the given vkeys (usually one
// log's keys) and quorum none: a log's own checkpoints, with no
// witnessing required.
func ForLog(vkeys ...string) (*Policy, error) {
	p := newPolicy()
	for _, vkey := range vkeys {
		// The vkey must be one field a policy file could hold, so that
		// String gives text that Parse accepts.
		if err := checkOctets([]byte(vkey)); err != nil {
			return nil, &vkeyError{fmt.Sprintf("%q: %v", vkey, err)}
		}
		if f := fields(vkey); len(f) != 1 || f[0] != vkey {
			return nil, &vkeyError{fmt.Sprintf("%q is not a single field", vkey)}
		}
		if err := p.parseLog([]string{"log", vkey}); err != nil {
			return nil, &vkeyError{strings.TrimPrefix(err.Error(), "log vkey: ")}
		}
	}
	if len(p.logs) == 0 {
		return nil, &vkeyError{"no log vkey"}
	}
	return p, nil
}

// vkeyError is ForLog's refusal. It is ErrMalformedPolicy to errors.Is,
// as the policy it would build is, but it speaks of the vkey the caller
// gave, not of a policy file the caller never wrote.
type vkeyError struct{ msg string }

func (e *vkeyError) Error() string        { return "malformed log vkey: " + e.msg }
func (e *vkeyError) Is(target error) bool { return target == ErrMalformedPolicy }

// LogOnly returns the policy of origin's keys alone, with quorum none:
// what makes a checkpoint the log's own, whoever cosigned it.
func (p *Policy) LogOnly(origin string) (*Policy, error) {
	var vkeys []string
	for _, l := range p.LogKeys(origin) {
		vkeys = append(vkeys, l.VKey)
	}
	if len(vkeys) == 0 {
		return nil, fmt.Errorf("%w: origin %q", ErrUnknownLog, origin)
	}
	return ForLog(vkeys...)
}

func newPolicy() *Policy {
	return &Policy{
		quorum:   ref{kind: refNone},
		byOrigin: make(map[string][]int),
		byName:   make(map[string]ref),
		byKey:    make(map[keyID]ref),
		byPub:    make(map[string]ref),
	}
}

// checkOctets enforces the spec's character set: tab, newline, 0x20-0x7E
// and 0x80-0xFF. Newlines were split off already.
func checkOctets(line []byte) error {
	for _, c := range line {
		if c == '\t' || (c >= 0x20 && c != 0x7f) {
			continue
		}
		if c == '\r' {
			return errors.New("carriage return (0x0d) is not allowed; lines end with a bare newline")
		}
		return fmt.Errorf("octet 0x%02x is not allowed (only tab, newline, 0x20-0x7e and 0x80-0xff)", c)
	}
	return nil
}

// fields splits on runs of space and tab only. strings.Fields would also
// split on Unicode spaces such as U+00A0, but the spec makes non-ASCII
// octets opaque parts of names and URLs.
func fields(s string) []string {
	var f []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return f
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return append(f, s)
		}
		f = append(f, s[:i])
		s = s[i:]
	}
}

// parseLog handles "log <vkey> [<url>]".
func (p *Policy) parseLog(f []string) error {
	if len(f) < 2 || len(f) > 3 {
		return fmt.Errorf("log line has %d fields, want \"log <vkey> [<url>]\"", len(f))
	}
	if len(p.logs) == MaxLogs {
		return fmt.Errorf("more than %d logs", MaxLogs)
	}
	k, err := parseVKey(f[1])
	if err != nil {
		return fmt.Errorf("log vkey: %v", err)
	}
	v, err := NewLogVerifier(f[1])
	if err != nil {
		return err
	}
	if err := p.addKey(k, fmt.Sprintf("log %q", k.name), ref{kind: refLog, i: len(p.logs)}); err != nil {
		return err
	}
	// The key name is the log's identity: Verify finds the log by the
	// checkpoint's origin. tlog-policy accepts a checkpoint signed by any
	// listed log, so one origin may have several keys (an STI-CT log signs
	// with its RFC 6962 key and with an Ed25519 key for C2SP witnesses),
	// but not two of one signature type, which would only be ambiguous.
	for _, j := range p.byOrigin[k.name] {
		if other := p.logs[j]; other.typ == k.typ {
			return fmt.Errorf("log origin %q already has a %s key, %s", k.name, typeName(k.typ), other.VKey)
		}
	}
	l := Log{Origin: k.name, VKey: f[1], Verifier: v, typ: k.typ}
	if len(f) == 3 {
		l.URL = f[2]
	}
	p.byOrigin[k.name] = append(p.byOrigin[k.name], len(p.logs))
	p.logs = append(p.logs, l)
	return nil
}

// parseWitness handles "witness <name> <vkey> [<url>]".
func (p *Policy) parseWitness(f []string) error {
	if len(f) < 3 || len(f) > 4 {
		return fmt.Errorf("witness line has %d fields, want \"witness <name> <vkey> [<url>]\"", len(f))
	}
	if len(p.witnesses) == MaxWitnesses {
		return fmt.Errorf("more than %d witnesses", MaxWitnesses)
	}
	name := f[1]
	if err := p.checkNewName(name); err != nil {
		return err
	}
	k, err := parseVKey(f[2])
	if err != nil {
		return fmt.Errorf("witness %q vkey: %v", name, err)
	}
	if !witnessKeyType(k.typ) {
		return fmt.Errorf("witness %q vkey has signature type %s; %s", name, typeName(k.typ), witnessKeyTypes)
	}
	v, err := newCosignatureVerifier(f[2])
	if err != nil {
		return fmt.Errorf("witness %q vkey: %v", name, err)
	}
	r := ref{kind: refWitness, i: len(p.witnesses)}
	if err := p.addKey(k, fmt.Sprintf("witness %q", name), r); err != nil {
		return err
	}
	w := Witness{Name: name, VKey: f[2], Verifier: v}
	if len(f) == 4 {
		w.URL = f[3]
	}
	p.byName[name] = r
	p.witnesses = append(p.witnesses, w)
	return nil
}

// parseGroup handles "group <name> all|any|<k> <name>...".
func (p *Policy) parseGroup(f []string) error {
	if len(f) < 4 {
		return fmt.Errorf("group line has %d fields, want \"group <name> all|any|<k> <name>...\" with at least one member", len(f))
	}
	if len(p.groups) == MaxGroups {
		return fmt.Errorf("more than %d groups", MaxGroups)
	}
	g := group{name: f[1], threshold: f[2]}
	if err := p.checkNewName(g.name); err != nil {
		return err
	}
	seen := make(map[string]bool)
	for _, m := range f[3:] {
		if m == noneName {
			return fmt.Errorf("group %q: %q is predefined for the quorum only and is not a valid group member", g.name, noneName)
		}
		r, ok := p.byName[m]
		if !ok {
			return fmt.Errorf("group %q: member %q is not a witness or group defined on a preceding line", g.name, m)
		}
		if seen[m] {
			return fmt.Errorf("group %q: member %q is listed more than once", g.name, m)
		}
		seen[m] = true
		g.members = append(g.members, r)
	}
	n := len(g.members)
	switch g.threshold {
	case "all":
		g.k = n
	case "any":
		g.k = 1
	default:
		k, err := parseThreshold(g.threshold)
		if err != nil {
			return fmt.Errorf("group %q: %v", g.name, err)
		}
		if k < 1 || k > uint64(n) {
			return fmt.Errorf("group %q: threshold %d must satisfy 1 <= k <= n = %d (the number of members)", g.name, k, n)
		}
		g.k = int(k)
	}
	p.byName[g.name] = ref{kind: refGroup, i: len(p.groups)}
	p.groups = append(p.groups, g)
	return nil
}

// parseThreshold accepts the decimal k of a group line. Leading zeroes and
// signs are refused so that every threshold has one spelling.
func parseThreshold(s string) (uint64, error) {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("threshold %q is not \"all\", \"any\" or a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("threshold %q has a leading zero", s)
	}
	k, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("threshold %q is out of range", s)
	}
	return k, nil
}

// parseQuorum handles "quorum <name>".
func (p *Policy) parseQuorum(f []string) error {
	if len(f) != 2 {
		return fmt.Errorf("quorum line has %d fields, want \"quorum <name>\"", len(f))
	}
	if f[1] == noneName {
		p.quorum = ref{kind: refNone}
		return nil
	}
	r, ok := p.byName[f[1]]
	if !ok {
		return fmt.Errorf("quorum %q is not a witness or group defined on a preceding line (or \"none\")", f[1])
	}
	p.quorum = r
	return nil
}

// checkNewName enforces the one namespace of witnesses and groups, with
// "none" predefined.
func (p *Policy) checkNewName(name string) error {
	if name == noneName {
		return fmt.Errorf("name %q is predefined and cannot be redefined", noneName)
	}
	if r, ok := p.byName[name]; ok {
		return fmt.Errorf("name %q is already defined as a %s", name, kindName(r.kind))
	}
	return nil
}

// addKey refuses a key whose public key is already in the policy (the
// spec's duplicate rule, which ignores key name and key ID, applied across
// logs and witnesses alike because signed-note says a key should not be
// reused for different signature types) and a (key name, key ID) pair
// that another key already has, which would make signature lines
// ambiguous. what describes the new key for the error.
func (p *Policy) addKey(k vkey, what string, r ref) error {
	if other, ok := p.byPub[string(k.pub)]; ok {
		return fmt.Errorf("%s has the same public key as %s (duplicate key)", what, p.describe(other))
	}
	id := keyID{k.name, k.hash}
	if other, ok := p.byKey[id]; ok {
		return fmt.Errorf("%s has the same key name and key ID (%s+%08x) as %s", what, k.name, k.hash, p.describe(other))
	}
	p.byPub[string(k.pub)] = r
	p.byKey[id] = r
	return nil
}

func (p *Policy) describe(r ref) string {
	switch r.kind {
	case refLog:
		return fmt.Sprintf("log %q", p.logs[r.i].Origin)
	case refWitness:
		return fmt.Sprintf("witness %q", p.witnesses[r.i].Name)
	case refGroup:
		return fmt.Sprintf("group %q", p.groups[r.i].name)
	}
	return noneName
}

func kindName(k refKind) string {
	switch k {
	case refWitness:
		return "witness"
	case refGroup:
		return "group"
	case refLog:
		return "log"
	}
	return "predefined name"
}

// Logs returns the policy's log keys in definition order.
func (p *Policy) Logs() []Log { return append([]Log(nil), p.logs...) }

// Log returns the first key the policy lists for origin: the one a log
// with several keys is known by (an STI-CT log's RFC 6962 key).
func (p *Policy) Log(origin string) (Log, bool) {
	keys := p.byOrigin[origin]
	if len(keys) == 0 {
		return Log{}, false
	}
	return p.logs[keys[0]], true
}

// LogKeys returns every key the policy lists for origin, in definition
// order; a checkpoint signed by any of them is the log's.
func (p *Policy) LogKeys(origin string) []Log {
	var keys []Log
	for _, i := range p.byOrigin[origin] {
		keys = append(keys, p.logs[i])
	}
	return keys
}

// HasLogKey reports whether the policy lists vkey, exactly as written, as
// a key of a log.
func (p *Policy) HasLogKey(vkey string) bool {
	name, _, _ := strings.Cut(vkey, "+")
	for _, l := range p.LogKeys(name) {
		if l.VKey == vkey {
			return true
		}
	}
	return false
}

// Witnesses returns the policy's witnesses in definition order.
func (p *Policy) Witnesses() []Witness { return append([]Witness(nil), p.witnesses...) }

// Quorum returns the name of the quorum: a witness, a group, or "none".
func (p *Policy) Quorum() string { return p.name(p.quorum) }

func (p *Policy) name(r ref) string {
	switch r.kind {
	case refWitness:
		return p.witnesses[r.i].Name
	case refGroup:
		return p.groups[r.i].name
	}
	return noneName
}

// String returns the canonical text of the policy: logs, witnesses, groups
// (each in definition order) and the quorum, one space between fields, no
// comments. Parse accepts it and yields an equal policy with the same String.
// Writing all witnesses before all groups keeps every reference pointing
// to a preceding line, since a group could only name earlier definitions.
func (p *Policy) String() string {
	var b strings.Builder
	for _, l := range p.logs {
		b.WriteString("log " + l.VKey)
		if l.URL != "" {
			b.WriteString(" " + l.URL)
		}
		b.WriteByte('\n')
	}
	for _, w := range p.witnesses {
		b.WriteString("witness " + w.Name + " " + w.VKey)
		if w.URL != "" {
			b.WriteString(" " + w.URL)
		}
		b.WriteByte('\n')
	}
	for _, g := range p.groups {
		b.WriteString("group " + g.name + " " + g.threshold)
		for _, m := range g.members {
			b.WriteString(" " + p.name(m))
		}
		b.WriteByte('\n')
	}
	b.WriteString("quorum " + p.Quorum() + "\n")
	return b.String()
}
