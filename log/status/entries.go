package status

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/transparency-dev/tessera/api/layout"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/vetting"
)

// entryView is one decoded entry of either log, with links to it and to
// its receipt. A field a log does not have is empty.
type entryView struct {
	Index      uint64
	EntryURL   string // this page, searching for the entry
	ReceiptURL string // the log's receipt endpoint
	Err        string // why the entry could not be decoded

	// The vetting log's.
	Agent, Subject, Digest, Logged string

	// The STI-CT log's.
	TNs, SPCs          []string
	NotAfter, LeafHash string
	Precert            bool
}

func entryURL(kind string, index uint64) string {
	return "/?" + url.Values{"kind": {kind}, "q": {strconv.FormatUint(index, 10)}}.Encode()
}

func receiptURL(prefix string, index uint64) string {
	return prefix + "/v1/receipt/" + strconv.FormatUint(index, 10)
}

// vettingEntry decodes a vetting leaf, naming its agent from agents (nil
// for none).
func vettingEntry(prefix string, agents *vetting.Agents, index uint64, b []byte) entryView {
	e := entryView{Index: index, EntryURL: entryURL(kindVettingIndex, index), ReceiptURL: receiptURL(prefix, index)}
	l, err := vetting.ParseLeaf(b)
	if err != nil {
		e.Err = err.Error()
		return e
	}
	e.Agent = "unregistered key " + base64.RawURLEncoding.EncodeToString(l.AgentKey[:])
	if agents != nil {
		if a, err := agents.Lookup(l.AgentKey); err == nil {
			e.Agent = a.Name
		}
	}
	e.Subject = l.Subject
	e.Digest = base64.RawURLEncoding.EncodeToString(l.Digest[:])
	e.Logged = time.UnixMilli(int64(l.Timestamp)).UTC().Format(time.RFC3339)
	return e
}

// stictEntry decodes an STI-CT TileLeaf: the certificate's telephone
// numbers and SPCs, subject and expiry.
func stictEntry(prefix string, index uint64, b []byte) entryView {
	e := entryView{Index: index, EntryURL: entryURL(kindSTICTIndex, index), ReceiptURL: receiptURL(prefix, index)}
	l, _, err := stict.ParseTileLeaf(b)
	if err != nil {
		e.Err = err.Error()
		return e
	}
	e.LeafHash = hex.EncodeToString(l.LeafHash())
	e.Precert = l.Precert
	c, tns, err := l.Parse()
	if c != nil {
		e.Subject = c.Subject.String()
		e.NotAfter = c.NotAfter.UTC().Format(time.RFC3339)
	}
	if err != nil {
		e.Err = err.Error()
	}
	e.TNs, e.SPCs = numbers(tns)
	return e
}

// numbers lists a TNAuthList's telephone numbers (ranges as "first–last")
// and its SPCs.
func numbers(l stict.TNAuthList) (tns, spcs []string) {
	for _, e := range l {
		switch {
		case e.SPC != "":
			spcs = append(spcs, e.SPC)
		case e.Range != nil:
			tns = append(tns, fmt.Sprintf("%s–%s (%d numbers)", e.Range.Start, rangeLast(e.Range), e.Range.Count))
		default:
			tns = append(tns, e.One)
		}
	}
	return tns, spcs
}

// rangeLast is the last number of a range, of the same width as its start.
func rangeLast(r *stict.TNRange) string {
	start, err := strconv.ParseUint(r.Start, 10, 64)
	if err != nil || r.Count < 1 {
		return "?"
	}
	s := strconv.FormatUint(start+uint64(r.Count)-1, 10)
	for len(s) < len(r.Start) {
		s = "0" + s
	}
	return s
}

// readEntry reads the entry at index of a tree of the given size: one bundle.
func readEntry(ctx context.Context, r Reader, index, size uint64) ([]byte, error) {
	entries, err := r.ReadBundle(ctx, index/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, err
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(entries)) {
		return nil, fmt.Errorf("bundle of entry %d has %d entries", index, len(entries))
	}
	return entries[i], nil
}

// latest calls f for the latest n entries of a tree of the given size,
// newest first, reading one bundle at a time (at most n/256+2 bundles).
// f returns false to stop.
func latest(ctx context.Context, r Reader, size, n uint64, f func(index uint64, entry []byte) bool) error {
	first := size - min(n, size)
	for end := size; end > first; {
		b := (end - 1) / layout.EntryBundleWidth
		entries, err := r.ReadBundle(ctx, b, size)
		if err != nil {
			return err
		}
		start := max(first, b*layout.EntryBundleWidth)
		for i := end; i > start; i-- {
			j := (i - 1) % layout.EntryBundleWidth
			if j >= uint64(len(entries)) {
				return fmt.Errorf("bundle %d has %d entries, want entry %d", b, len(entries), i-1)
			}
			if !f(i-1, entries[j]) {
				return nil
			}
		}
		end = start
	}
	return nil
}
