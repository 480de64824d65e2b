package log

import (
	"testing"

	"github.com/vesperlog/vesperlog/storage/antispam"
)

// TestRecentCoversAntispamGap: the posix store refuses adds before its
// unindexed gap outgrows the in-memory dedup, which alone covers that gap.
func TestRecentCoversAntispamGap(t *testing.T) {
	// Half, for the adds that slip in between two follower steps and the
	// entries sequenced but not yet integrated (not counted in the gap).
	if antispam.DefaultPushback > recentSize/2 {
		t.Fatalf("antispam pushback at %d unindexed entries, in-memory dedup of %d", antispam.DefaultPushback, recentSize)
	}
}
