// Command vesperload is the project's load generator (package client/load):
//
//	vesperload -key AGENT.jwk -rate R -duration D [-max-inflight N] [-batch K] [-verify S] [-json]
//	vesperload -key AGENT.jwk -concurrency N (-duration D | -count N) [-batch K] [-verify S]
//	vesperload -raw -target URL -rate R -duration D    (a Tessera-style POST /add)
//	vesperload -ct -pki DIR -target URL -rate R -duration D    (a static-ct-api log's add-chain)
//
// It drives a vesperlog vetting log with statements pre-signed by
// registered agent keys (vesper keygen agent; vesper agents add); with
// -raw, any server with Tessera's conformance API; with -ct, any RFC 6962
// log that trusts the root of a test STI PKI, with certificates it issues
// before the run. It reports entries per second, latency quantiles,
// answers by status and verified receipts.
package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vesperlog/vesperlog/client/load"
	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/storage/keys"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(program.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

var program = &cli.Program{Name: "vesperload", Default: &cli.Command{
	Synopsis: "(-key AGENT.jwk... | -raw | -ct -pki DIR) (-rate R [-max-inflight N] | -concurrency N) (-duration D | -count N) [flags]",
	Summary:  "drive a log with submissions and measure what it holds",
	Description: "Open loop (-rate): requests start at R per second whatever the answers, with at most -max-inflight " +
		"in flight; a request due while the bound is reached is dropped and counted, never queued. Closed loop " +
		"(-concurrency): N requests always in flight. Statements are pre-signed before the run with the -key agent keys " +
		"(registered with the log: vesper keygen agent, vesper agents add), sent to /vetting/v1/add, or with -batch K " +
		"to /vetting/v1/add-batch; a share -verify of the receipts is verified offline after the run against the " +
		"log's trust document (/.well-known/transparency-configuration). With -raw, random entries go to a " +
		"Tessera-style POST /add and each is timed until GET /checkpoint covers it. With -ct, telephone-number " +
		"certificates issued before the run under the test STI PKI in -pki (testdata/sti-pki, or vesper ca's) go to " +
		"the target's /ct/v1/add-chain (the target is the log's submission prefix: http://127.0.0.1:8080/stict for " +
		"vesperlog), each timed to its SCT (whose form is checked, not its signature). The target must be a loopback " +
		"address unless -allow-remote: a load tool pointed at someone else's server by mistake is an attack. " +
		"A run is bounded: at most " + load.MaxDuration.String() + ", " + fmt.Sprint(load.MaxEntries) + " entries and " +
		fmt.Sprint(load.MaxRate) + " requests/s unless -no-limits.",
	Flags: loadFlags,
}}

// keyFiles is a repeatable -key flag.
type keyFiles []string

func (k *keyFiles) String() string     { return fmt.Sprint(*k) }
func (k *keyFiles) Set(s string) error { *k = append(*k, s); return nil }

func loadFlags(fs *flag.FlagSet) cli.Action {
	var c load.Config
	var kf keyFiles
	fs.StringVar(&c.Target, "target", "http://127.0.0.1:8080", "the server's base URL")
	fs.Var(&kf, "key", "a registered agent's private JWK (repeat for several agents)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second")
	fs.IntVar(&c.MaxInflight, "max-inflight", 1000, "open loop: most requests in flight")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "closed loop: requests always in flight")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to send")
	fs.IntVar(&c.Count, "count", 0, "how many requests to send (at most)")
	fs.IntVar(&c.Batch, "batch", 1, "statements per request (over 1: add-batch, up to 1000)")
	fs.Float64Var(&c.Verify, "verify", 0.1, "share of receipts to verify offline after the run, 0 to 1 (at most "+fmt.Sprint(load.MaxSamples)+" receipts are kept)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "each request's timeout")
	fs.BoolVar(&c.Raw, "raw", false, "post opaque entries to a Tessera-style POST /add, timed to the covering checkpoint")
	fs.IntVar(&c.RawSize, "raw-size", 128, "raw: bytes per entry")
	fs.DurationVar(&c.Poll, "poll", 50*time.Millisecond, "raw: how often to read the checkpoint")
	fs.BoolVar(&c.CT, "ct", false, "post certificate chains to the target's /ct/v1/add-chain, timed to the SCT")
	pki := fs.String("pki", "", "ct: a test STI PKI directory (root, intermediate and their keys) to issue the certificates under")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id, to report its CPU time per entry and RSS, with its anonymous part (from /proc)")
	pool := fs.Int("pool", load.DefaultPool, "closed loop for a duration: statements to pre-sign (certificates to issue, with -ct)")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	fs.BoolVar(&c.NoLimits, "no-limits", false, "lift the bounds on duration, entries and rate")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return cli.Usagef("unexpected arguments %q", args)
		}
		if n := btoi(len(kf) > 0) + btoi(c.Raw) + btoi(c.CT); n != 1 {
			return cli.Usagef("give one of -key (a vetting log), -raw and -ct")
		}
		if c.CT != (*pki != "") {
			return cli.Usagef("-ct takes -pki DIR, and -pki only goes with -ct")
		}
		if c.CT {
			c.Chains = func(n int) ([][][]byte, error) {
				p, err := stitest.LoadPKI(*pki)
				if err != nil {
					return nil, fmt.Errorf("-pki: %w", err)
				}
				return issueChains(p, n)
			}
		}
		if *pool < 1 {
			return cli.Usagef("-pool must be positive")
		}
		if c.Rate == 0 {
			c.MaxInflight = 0 // the default belongs to open loop
		}
		if err := c.Check(); err != nil {
			return cli.Usagef("%v", err)
		}
		var agents []load.Agent
		for _, f := range kf {
			k, err := keys.LoadJWK(f)
			if err != nil {
				return err
			}
			signer, ok := k.Key.(crypto.Signer)
			if !ok || k.IsPublic() {
				return fmt.Errorf("%s is not a private key", f)
			}
			agents = append(agents, load.Agent{Public: k.Public(), Signer: signer})
		}
		progress := io.Writer(os.Stderr)
		r, err := load.Run(ctx, c, agents, *pool, progress)
		if errors.Is(err, load.ErrConfig) {
			return cli.Usagef("%v", err)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, string(b))
		} else {
			r.WriteSummary(stdout)
		}
		if r.ReceiptsFailed > 0 {
			return fmt.Errorf("%d receipts failed verification", r.ReceiptsFailed)
		}
		return nil
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// issueChains issues n telephone-number certificates under p, on every
// core, and returns their chains as submitted (leaf, intermediate).
func issueChains(p *stitest.PKI, n int) ([][][]byte, error) {
	chains := make([][][]byte, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && errs[w] == nil; i += workers {
				c, err := p.NewTN(fmt.Sprintf("vesperload %d", i))
				if err != nil {
					errs[w] = err
					return
				}
				chains[i] = p.Chain(c)
			}
		}()
	}
	wg.Wait()
	return chains, errors.Join(errs...)
}
