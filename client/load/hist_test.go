package load

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestBuckets: every value falls in a bucket whose top is at or above it and
// within 1/64 of it, and buckets are ordered.
func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 12345, 1<<40 - 1, 1 << 62} {
		b := bucket(v)
		if b < prev {
			t.Errorf("bucket(%d) = %d, below the previous value's %d", v, b, prev)
		}
		prev = b
		hi := bucketHigh(b)
		if hi < v || float64(hi-v) > float64(v)/64+1 {
			t.Errorf("value %d: bucket %d tops at %d", v, b, hi)
		}
		if b > 0 && bucketHigh(b-1) >= v {
			t.Errorf("value %d: the bucket below (%d) already reaches %d", v, b-1, bucketHigh(b-1))
		}
	}
}

// TestQuantiles: quantiles of a histogram agree, to the bucket width, with
// the exact quantiles of the same sample.
func TestQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Count() != 0 {
		t.Fatal("an empty histogram reports a latency")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var sample []time.Duration
	for range 100000 {
		// Log-normal-ish: most near 5 ms, a tail to seconds.
		d := time.Duration(r.ExpFloat64()*5e6) + time.Duration(r.IntN(100))*time.Microsecond
		if r.IntN(100) == 0 {
			d += 2 * time.Second
		}
		sample = append(sample, d)
		h.Record(d)
	}
	slices.Sort(sample)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := sample[int(q*float64(len(sample)))-1]
		got := h.Quantile(q)
		if got < exact-time.Microsecond || float64(got-exact) > float64(exact)/32+float64(time.Microsecond) {
			t.Errorf("q%.3f = %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != sample[len(sample)-1] || h.Quantile(1) != h.Max() {
		t.Errorf("max %v, q1 %v; want %v", h.Max(), h.Quantile(1), sample[len(sample)-1])
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2*h.Count() || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d, p50 %v; want %d, %v", m.Count(), m.Quantile(0.5), 2*h.Count(), h.Quantile(0.5))
	}
}
