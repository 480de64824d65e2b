package status

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// Search kinds: the form's kind parameter.
const (
	kindVettingIndex = "vetting-index"
	kindSTICTIndex   = "stict-index"
	kindDigest       = "digest"
	kindLeafHash     = "leaf-hash"
	kindTN           = "tn"
)

// maxQuery bounds the q parameter; every valid query is far shorter.
const maxQuery = 256

// badInput is a query the page cannot search for: it answers 400 with msg.
type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badInput{msg: fmt.Sprintf(format, args...)} }

// searchView is the answer to a search.
type searchView struct {
	Summary string // what was found, in a sentence
	Note    string // how far the search went, when it was bounded
	Vetting bool   // Entries are the vetting log's (else the STI-CT log's)
	Entries []entryView
}

// search answers the form's query. Bad input is a *badInput.
func (p *Page) search(ctx context.Context, kind, q string) (*searchView, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, bad("Enter something to search for.")
	}
	if len(q) > maxQuery {
		return nil, bad("The search text is %d characters long; nothing searchable is longer than %d.", len(q), maxQuery)
	}
	switch kind {
	case kindVettingIndex, kindSTICTIndex:
		return p.searchIndex(ctx, kind, q)
	case kindDigest:
		return p.searchDigest(ctx, q)
	case kindLeafHash:
		return p.searchLeafHash(ctx, q)
	case kindTN:
		return p.searchTN(ctx, q)
	}
	return nil, bad("Choose what to search for: an entry index, a vetting digest, an STI-CT leaf hash or a telephone number.")
}

// publishedSize reads the size of a log's latest checkpoint; a log with
// none yet has size 0.
func publishedSize(ctx context.Context, l *Log) (uint64, error) {
	cp, err := l.Reader.Checkpoint(ctx)
	if errors.Is(err, problem.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := parseCheckpoint(cp, nil, nil)
	if err != nil {
		return 0, err
	}
	return v.size, nil
}

func (p *Page) stictLog() (*Log, error) {
	if p.cfg.STICT == nil {
		return nil, bad("The STI-CT log does not run on this server.")
	}
	return p.cfg.STICT, nil
}

func (p *Page) searchIndex(ctx context.Context, kind, q string) (*searchView, error) {
	l, name := &p.cfg.Vetting, "vetting log"
	if kind == kindSTICTIndex {
		var err error
		if l, err = p.stictLog(); err != nil {
			return nil, err
		}
		name = "STI-CT log"
	}
	i, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		return nil, bad("%q is not an entry index: give a decimal number such as 0 or 42.", q)
	}
	size, err := publishedSize(ctx, l)
	if err != nil {
		return nil, err
	}
	res := &searchView{Vetting: kind == kindVettingIndex}
	if i >= size {
		res.Summary = fmt.Sprintf("The %s has no entry %d: its latest checkpoint has %d entries.", name, i, size)
		return res, nil
	}
	b, err := readEntry(ctx, l.Reader, i, size)
	if err != nil {
		return nil, err
	}
	res.Summary = fmt.Sprintf("Entry %d of the %s.", i, name)
	res.Entries = []entryView{p.decode(l, i, b)}
	return res, nil
}

// maxAgentLookups bounds the lookups of a digest search; registries hold
// a few agents, and the bound keeps a request's work bounded all the same.
const maxAgentLookups = 256

// searchDigest looks the digest up for each registered agent: the dedup
// index is keyed by (agent, digest), and agents are few.
func (p *Page) searchDigest(ctx context.Context, q string) (*searchView, error) {
	d, err := parse32(q)
	if err != nil {
		return nil, bad("%q is not a vetting digest: give the SHA-256 kyc_data_hash as 43 characters of base64url, or as 64 hex digits.", q)
	}
	res := &searchView{Vetting: true}
	if p.cfg.Agents == nil || p.cfg.LookupDigest == nil {
		res.Summary = "This server cannot search by digest."
		return res, nil
	}
	agents := p.cfg.Agents()
	var list []*vetting.Agent
	if agents != nil {
		list = agents.List()
	}
	if len(list) > maxAgentLookups {
		res.Note = fmt.Sprintf("Searched the first %d of %d registered agents, by name.", maxAgentLookups, len(list))
		list = list[:maxAgentLookups]
	}
	size, err := publishedSize(ctx, &p.cfg.Vetting)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		i, err := p.cfg.LookupDigest(ctx, a.Thumbprint, d)
		if errors.Is(err, problem.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking up the digest for agent %s: %w", a.Name, err)
		}
		if i >= size { // published after this request read the checkpoint
			continue
		}
		b, err := readEntry(ctx, p.cfg.Vetting.Reader, i, size)
		if err != nil {
			return nil, err
		}
		res.Entries = append(res.Entries, vettingEntry(p.cfg.Vetting.Prefix, agents, i, b))
	}
	res.Summary = fmt.Sprintf("%s for digest %s among %d registered agents.", plural(len(res.Entries), "entry", "entries"), base64.RawURLEncoding.EncodeToString(d[:]), len(list))
	return res, nil
}

func (p *Page) searchLeafHash(ctx context.Context, q string) (*searchView, error) {
	l, err := p.stictLog()
	if err != nil {
		return nil, err
	}
	h, err := parse32(q)
	if err != nil {
		return nil, bad("%q is not a leaf hash: give the SHA-256 Merkle leaf hash as 64 hex digits or as base64.", q)
	}
	res := &searchView{}
	if p.cfg.LookupLeafHash == nil {
		res.Summary = "This server cannot search by leaf hash."
		return res, nil
	}
	i, err := p.cfg.LookupLeafHash(ctx, h[:])
	if errors.Is(err, problem.ErrNotFound) {
		res.Summary = fmt.Sprintf("No STI-CT entry has leaf hash %x (a new entry is found a few seconds after its SCT).", h)
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up leaf hash %x: %w", h, err)
	}
	size, err := publishedSize(ctx, l)
	if err != nil {
		return nil, err
	}
	if i >= size {
		res.Summary = fmt.Sprintf("Leaf hash %x is entry %d, which is not in a published checkpoint yet; search again in a second.", h, i)
		return res, nil
	}
	b, err := readEntry(ctx, l.Reader, i, size)
	if err != nil {
		return nil, err
	}
	res.Summary = fmt.Sprintf("Leaf hash %x is entry %d of the STI-CT log.", h, i)
	res.Entries = []entryView{stictEntry(l.Prefix, i, b)}
	return res, nil
}

// searchTN scans the latest TNScanEntries STI-CT entries for certificates
// whose TNAuthList covers the number (or names it as an SPC).
func (p *Page) searchTN(ctx context.Context, q string) (*searchView, error) {
	l, err := p.stictLog()
	if err != nil {
		return nil, err
	}
	tn, ok := normalizeTN(q)
	if !ok {
		return nil, bad("%q is not a telephone number: give up to 15 digits (E.164 without +, such as 12025550142; spaces, dashes, dots and parentheses are ignored).", q)
	}
	size, err := publishedSize(ctx, l)
	if err != nil {
		return nil, err
	}
	res := &searchView{}
	scanned := uint64(0)
	err = latest(ctx, l.Reader, size, TNScanEntries, func(i uint64, b []byte) bool {
		scanned++
		leaf, _, err := stict.ParseTileLeaf(b)
		if err != nil {
			return true
		}
		if _, tns, err := leaf.Parse(); err == nil && (tns.Covers(tn) || tns.HasSPC(tn)) {
			res.Entries = append(res.Entries, stictEntry(l.Prefix, i, b))
		}
		return len(res.Entries) < MaxTNResults
	})
	if err != nil {
		return nil, err
	}
	res.Summary = fmt.Sprintf("%s whose TNAuthList covers %s (as a number, or as an SPC).", plural(len(res.Entries), "certificate", "certificates"), tn)
	switch {
	case len(res.Entries) == MaxTNResults:
		res.Note = fmt.Sprintf("Showing the newest %d matches, from the latest %d entries.", MaxTNResults, scanned)
	case scanned < size:
		res.Note = fmt.Sprintf("Searched the latest %d of %d entries: telephone-number search scans recent entries and has no index; follow the whole log with vesper monitor.", scanned, size)
	default:
		res.Note = fmt.Sprintf("Searched all %d entries.", size)
	}
	return res, nil
}

// normalizeTN removes the separators people write in telephone numbers
// and checks what is left is an RFC 8226 TelephoneNumber.
func normalizeTN(q string) (string, bool) {
	tn := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()", r) {
			return -1
		}
		return r
	}, strings.TrimPrefix(q, "+"))
	if tn == "" || len(tn) > 15 || strings.Trim(tn, "0123456789#*") != "" {
		return "", false
	}
	return tn, true
}

// parse32 reads a SHA-256 value written as hex or base64 (URL-safe or
// standard, padded or not).
func parse32(s string) ([32]byte, error) {
	var out [32]byte
	var b []byte
	var err error
	if len(s) == 64 {
		b, err = hex.DecodeString(s)
	} else {
		b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		}
	}
	if err != nil || len(b) != len(out) {
		return out, errors.New("not 32 bytes of hex or base64")
	}
	copy(out[:], b)
	return out, nil
}

func plural(n int, one, many string) string {
	switch n {
	case 0:
		return "No " + many
	case 1:
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
