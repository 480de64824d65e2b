package storagetest

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	tessaws "github.com/transparency-dev/tessera/storage/aws"
	awsantispam "github.com/transparency-dev/tessera/storage/aws/antispam"
	"k8s.io/klog/v2"
)

// Helpers for benchmarks that compare vesperlog on the aws backend with
// Tessera's bare AWS driver on the same servers.

// BareAWS opens Tessera's AWS driver and antispam store on a's database and
// bucket as storage.Open does (path-style S3 at a.Endpoint, the log under
// prefix, the same pool bounds), bypassing vesperlog.
func BareAWS(b testing.TB, a AWS, prefix string) (tessera.Driver, tessera.Antispam) {
	b.Helper()
	QuietKlog()
	ctx := context.Background()
	sdk, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if sdk.Region == "" {
		sdk.Region = "us-east-1"
	}
	dsn := CapDSN(b, a.DSN)
	d, err := tessaws.New(ctx, tessaws.Config{
		SDKConfig: &sdk,
		S3Options: func(o *s3.Options) {
			o.BaseEndpoint = aws.String(a.Endpoint)
			o.UsePathStyle = true
		},
		Bucket:       a.Bucket,
		BucketPrefix: prefix,
		DSN:          dsn,
		MaxOpenConns: bareDriverConns,
		MaxIdleConns: bareDriverConns,
	})
	if err != nil {
		b.Fatal(err)
	}
	as, err := awsantispam.NewAntispam(ctx, dsn, awsantispam.AntispamOpts{MaxOpenConns: bareAntispamConns, MaxIdleConns: bareAntispamConns})
	if err != nil {
		b.Fatal(err)
	}
	return d, as
}

// QuietKlog keeps Tessera's klog lines (its AWS driver's non-AWS warning
// comes with an ASCII dragon; cancelled background work logs errors at
// shutdown) out of the benchmark output, where they would split result
// lines. Failed adds still fail the benchmark.
var QuietKlog = sync.OnceFunc(func() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
	// And the MySQL driver's, about the connections closed when a run ends.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
})

// The pool bounds of storage/aws.go (driverConns, antispamConns), which
// BareAWS gives Tessera's driver and antispam store too.
const (
	bareDriverConns   = 8
	bareAntispamConns = 4
)

// MariaDB allows 151 connections by default, shared here with whatever
// else uses the server. The aws benchmarks dial it through benchNet, which
// holds at most benchDBConns connections at once (a dial waits for a slot)
// and closes those still open when a run ends: Tessera's AWS driver and
// antispam store have no Close, so their pools would otherwise keep
// connections for the rest of the process, a run's more each time. The
// db-conns-wanted metric is the peak of open plus waiting connections.
const (
	benchNet     = "vesperbench"
	benchDBConns = 64
)

var DBConns = newConnCap(benchDBConns)

// CapDSN routes dsn through benchNet. When b ends, it closes the
// connections still open: Tessera's AWS driver and antispam store have no
// Close, and their pools would hold connections (and the slots) for the
// rest of the process.
func CapDSN(b testing.TB, dsn string) string {
	b.Helper()
	DBConns.register()
	b.Cleanup(DBConns.closeAll)
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	c.Net = benchNet
	return c.FormatDSN()
}

type connCap struct {
	slots      chan struct{}
	once       sync.Once
	used       atomic.Bool // whether this benchmark dialled through it
	want, peak atomic.Int64

	mu    sync.Mutex
	conns map[*cappedConn]bool // the open ones
}

func newConnCap(n int) *connCap {
	return &connCap{slots: make(chan struct{}, n), conns: map[*cappedConn]bool{}}
}

func (c *connCap) register() {
	c.used.Store(true)
	c.once.Do(func() {
		mysql.RegisterDialContext(benchNet, c.dial)
	})
}

func (c *connCap) dial(ctx context.Context, addr string) (net.Conn, error) {
	w := c.want.Add(1)
	for p := c.peak.Load(); w > p && !c.peak.CompareAndSwap(p, w); p = c.peak.Load() {
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		c.want.Add(-1)
		return nil, ctx.Err()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		<-c.slots
		c.want.Add(-1)
		return nil, err
	}
	cc := &cappedConn{Conn: conn}
	cc.release = sync.OnceFunc(func() {
		c.mu.Lock()
		delete(c.conns, cc)
		c.mu.Unlock()
		<-c.slots
		c.want.Add(-1)
	})
	c.mu.Lock()
	c.conns[cc] = true
	c.mu.Unlock()
	return cc, nil
}

// closeAll closes every open connection.
func (c *connCap) closeAll() {
	c.mu.Lock()
	open := make([]*cappedConn, 0, len(c.conns))
	for cc := range c.conns {
		open = append(open, cc)
	}
	c.mu.Unlock()
	for _, cc := range open {
		_ = cc.Close()
	}
}

// Reset starts counting the peak afresh.
func (c *connCap) Reset() { c.peak.Store(c.want.Load()) }

// Report adds the peak to b's metrics if b dialled through c, and says
// whether it did.
func (c *connCap) Report(b *testing.B) bool {
	if !c.used.Swap(false) {
		return false
	}
	b.ReportMetric(float64(c.peak.Load()), "db-conns-wanted")
	return true
}

type cappedConn struct {
	net.Conn
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// RetryAfter is how long a client waits after a pushback: vesperlog's
// Retry-After.
const RetryAfter = time.Second

// Run is one run of a benchmark function: its failures, counted
// rather than each reported, and its pushbacks.
type Run struct {
	b       *testing.B
	cpu     time.Duration // the process's CPU time at the start
	fails   atomic.Int64
	retries atomic.Int64
}

// StartRun starts the timed part of b.
func StartRun(b *testing.B) *Run {
	DBConns.Reset()
	b.ResetTimer()
	return &Run{b: b, cpu: processCPU(b)}
}

// processCPU is the CPU time (user and system) the process has used so
// far: server and benchmark client together, as both run in it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Fail reports the first few failures and counts the rest.
func (r *Run) Fail(format string, args ...any) {
	if r.fails.Add(1) <= 3 {
		r.b.Errorf(format, args...)
	}
}

// PushedBack counts n entries pushed back and waits before they are
// submitted again.
func (r *Run) PushedBack(n int) {
	r.retries.Add(int64(n))
	time.Sleep(RetryAfter)
}

// Done reports the throughput of entries, and for the aws benchmarks
// the entries pushed back and the database connections wanted.
func (r *Run) Done(entries int) {
	r.b.StopTimer()
	if n := r.fails.Load(); n > 3 {
		r.b.Errorf("and %d more failures", n-3)
	}
	r.b.ReportMetric(float64(entries)/r.b.Elapsed().Seconds(), "entries/s")
	// CPU per entry, in ms: the figure issue 15 sets targets for.
	r.b.ReportMetric(float64(processCPU(r.b)-r.cpu)/float64(time.Millisecond)/float64(entries), "cpu-ms/entry")
	if DBConns.Report(r.b) {
		r.b.ReportMetric(float64(r.retries.Load()), "pushbacks")
	}
}

// RunInflight runs iter(n) for every n in [0, b.N), inflight at a time.
// With inflight 1 it is the plain benchmark loop.
func RunInflight(b *testing.B, inflight int, iter func(n int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(inflight, b.N) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1) - 1)
				if n >= b.N {
					return
				}
				iter(n)
			}
		}()
	}
	wg.Wait()
}

// Client is the HTTP client of the benchmarks that submit over HTTP. It
// keeps a connection per request in flight, as a submitter's pool would:
// http.DefaultClient keeps two, so most of a thousand concurrent requests
// would open a new connection and measure the TCP handshake.
var Client = &http.Client{Transport: func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2048
	t.MaxIdleConnsPerHost = 2048
	return t
}()}
