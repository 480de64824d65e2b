package client

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/log/vetting"
)

const benchEntries = 4000

// benchLog writes a vetting log of benchEntries entries, served over HTTP
// on 127.0.0.1, and returns two views of it: over HTTP (what vesper audit
// reads) and of its POSIX directory (no HTTP: the audit's own cost); and
// its entries read once, and the agents registry.
func benchLog(b *testing.B) (web, dir *Log, entries [][]byte, agents *vetting.Agents) {
	skey, vkey, agent := newKeys(b)
	tl := startLog(b, skey, agent)
	for n := 0; n < benchEntries; n += 1000 {
		tl.add(b, 1000)
	}
	web = viewOf(b, tl, vkey)
	dir = viewOf(b, tl, vkey)
	dir.Fetch = NewDirFetcher(tl.dir)
	cp, _, err := dir.Checkpoint(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for e, err := range dir.Entries(context.Background(), cp, 0, 4) {
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, e.Data)
	}
	if len(entries) != benchEntries {
		b.Fatalf("%d entries in the log, want %d", len(entries), benchEntries)
	}
	agents, _ = (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: agent.Public()}, "")
	return web, dir, entries, agents
}

func verifyLeaf(agents *vetting.Agents, e []byte) error {
	leaf, err := vetting.ParseLeaf(e)
	if err != nil {
		return err
	}
	a, err := agents.Lookup(leaf.AgentKey)
	if err != nil {
		return err
	}
	return leaf.Verify(&a.Key)
}

// BenchmarkAudit compares, in one run, vesper audit's work on a log of
// 4,000 ES256 entries, read over HTTP from a vesperlog server on
// 127.0.0.1 and read from its POSIX directory, with the floor it cannot
// go below: the same SHA-256 leaf hashes and agent signature checks over
// entries already in memory. Each audit must check every entry.
func BenchmarkAudit(b *testing.B) {
	web, dir, entries, agents := benchLog(b)
	ctx := context.Background()
	cp, _, err := dir.Checkpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	audit := func(b *testing.B, l *Log, signatures bool) {
		b.ReportAllocs()
		for b.Loop() {
			checked := 0
			o := AuditOptions{Check: func(_ uint64, e []byte) error {
				checked++
				if !signatures {
					return nil
				}
				return verifyLeaf(agents, e)
			}}
			if err := l.Audit(ctx, cp, o); err != nil {
				b.Fatal(err)
			}
			if checked != benchEntries {
				b.Fatalf("audit checked %d entries of %d", checked, benchEntries)
			}
		}
		b.ReportMetric(float64(b.N*benchEntries)/b.Elapsed().Seconds(), "entries/s")
	}
	b.Run("audit-http", func(b *testing.B) { audit(b, web, true) })
	b.Run("audit", func(b *testing.B) { audit(b, dir, true) })
	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, e := range entries {
				rfc6962.DefaultHasher.HashLeaf(e)
				if err := verifyLeaf(agents, e); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*benchEntries)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("audit-without-signatures", func(b *testing.B) { audit(b, dir, false) })
}
