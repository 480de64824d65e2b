package client

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/log/vetting"
)

const benchEntries = 4000

// benchLog writes a vetting log of benchEntries entries and returns a view
// of its POSIX directory (no HTTP: the audit's own cost is measured), its
// entries read once, and the agents registry.
func benchLog(b *testing.B) (*Log, [][]byte, *vetting.Agents) {
	skey, vkey, agent := newKeys(b)
	tl := startLog(b, skey, agent)
	for n := 0; n < benchEntries; n += 1000 {
		tl.add(b, 1000)
	}
	l := viewOf(b, tl, vkey)
	l.Fetch = NewDirFetcher(tl.dir)
	cp, _, err := l.Checkpoint(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var entries [][]byte
	for e, err := range l.Entries(context.Background(), cp, 0, 4) {
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, e.Data)
	}
	agents, _ := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: agent.Public()}, "")
	return l, entries, agents
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
// 4,000 ES256 entries read from its POSIX directory with the floor it
// cannot go below: the same SHA-256 leaf hashes and agent signature checks
// over entries already in memory.
func BenchmarkAudit(b *testing.B) {
	l, entries, agents := benchLog(b)
	ctx := context.Background()
	cp, _, _ := l.Checkpoint(ctx)
	b.Run("audit", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := l.Audit(ctx, cp, AuditOptions{Check: func(_ uint64, e []byte) error { return verifyLeaf(agents, e) }}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchEntries)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("floor", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, e := range entries {
				rfc6962.DefaultHasher.HashLeaf(e)
				if err := verifyLeaf(agents, e); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*benchEntries)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("audit-without-signatures", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := l.Audit(ctx, cp, AuditOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchEntries)/b.Elapsed().Seconds(), "entries/s")
	})
}
