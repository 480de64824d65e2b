package load

import (
	"math/bits"
	"time"
)

// subBuckets is the number of buckets per power of two of microseconds:
// a recorded latency is reported to within 1/64 (1.6%) of its value.
const subBuckets = 64

// Histogram counts latencies in log-linear buckets of microseconds, in
// constant memory however long the run. The zero value is empty and ready.
// It is not safe for concurrent use: the runner guards it.
type Histogram struct {
	counts [64 * subBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucket is v's bucket: values below subBuckets have their own; above, the
// top 7 bits of v (the leading one and 6 more) name it.
func bucket(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // keep the leading 1 and 6 bits below it
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketHigh is the largest value that falls in bucket b.
func bucketHigh(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	shift := b/subBuckets - 1
	top := uint64(b%subBuckets + subBuckets)
	return (top+1)<<shift - 1
}

// Record adds one latency; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	h.counts[bucket(us)]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency at or below which a share q (0 to 1) of the
// recorded ones fall, as the top of its bucket (never above Max); 0 if
// nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(b))*time.Microsecond, h.max)
		}
	}
	return h.max
}
