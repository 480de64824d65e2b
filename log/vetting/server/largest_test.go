package server

import (
	"bytes"
	"fmt"
	"testing"
)

// TestLargest checks the choice of a batch's one checkpoint: the largest
// tree among those that covered its entries, nil ones (failed entries)
// skipped, and a malformed one refused rather than passed over.
func TestLargest(t *testing.T) {
	cp := func(n int) []byte {
		return fmt.Appendf(nil, "example.test/vetting\n%d\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.test/vetting sig\n", n)
	}
	for _, c := range []struct {
		cps  [][]byte
		want []byte
	}{
		{nil, nil},
		{[][]byte{nil, nil}, nil},
		{[][]byte{cp(3)}, cp(3)},
		{[][]byte{cp(3), nil, cp(10), cp(9), cp(10)}, cp(10)},
		{[][]byte{nil, cp(12), cp(3)}, cp(12)},
	} {
		got, err := largest(c.cps)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("largest(%q) = %q, %v; want %q", c.cps, got, err, c.want)
		}
	}
	if _, err := largest([][]byte{cp(3), []byte("not a checkpoint")}); err == nil {
		t.Error("a malformed checkpoint was passed over")
	}
}
