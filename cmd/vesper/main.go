// Command vesper is vesperlog's command line for everyone but the operator's
// server: vetting agents (keygen, kyc-hash, submit), verifiers
// (trust, verify-receipt) and log operators managing agents (agents add).
//
// Every failure is one line on standard error and a non-zero exit: 1 when
// something was checked and failed or the server refused, 2 for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: its usage line and what it runs.
type command struct {
	usage string
	run   func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"keygen":         {"keygen agent|holder -out FILE [-alg ES256|EdDSA]", runKeygen},
	"agent":          {"agent enroll -entities DIR -id ID -commitment FILE [-claims C.json -frame F.json] | agent serve -key AGENT.jwk -iss ISS -entities DIR -trust TRUST.json [-addr A -server URL]", runAgent},
	"agents":         {"agents add -agents FILE -name NAME -key PUBLIC.jwk [-iss ISSUER]", runAgents},
	"kyc-hash":       {"kyc-hash -in KYC.json [-out COMMITMENT.json | -salt B64URL]", runKYCHash},
	"submit":         {"submit -server URL -key AGENT.jwk (-commitment FILE | -digest B64URL | -digests FILE) [-sub SUBJECT] [-out RECEIPT]", runSubmit},
	"trust":          {"trust -server URL -out TRUST.json", runTrust},
	"checkpoint":     {"checkpoint -trust TRUST.json [-log NAME] [-state DIR] [-url URL | -dir DIR]", runCheckpoint},
	"proof":          {"proof inclusion (-index N | -leaf-hash H) | proof consistency -old M [-new N]; both -trust TRUST.json", runProof},
	"audit":          {"audit -trust TRUST.json [-log vetting|stict] [-agents AGENTS.json | -roots ROOTS.pem] [-resume FILE] [-state DIR] [-url URL | -dir DIR]", runAudit},
	"monitor":        {"monitor -trust TRUST.json [-log vetting|stict] -state DIR [-agent THUMBPRINT | -tn NUMBER -tn-range START,COUNT -spc CODE] [-once | -interval 30s]", runMonitor},
	"compare":        {"compare -trust TRUST.json -witness URL", runCompare},
	"check-evidence": {"check-evidence -log-vkey VKEY EVIDENCE.json", runCheckEvidence},
	"token":          {"token issue -key AGENT.jwk -iss ISS -sub SUB -commitment FILE -receipt RECEIPT [-claims C.json -frame F.json -holder-key H.pub.jwk] | token present -token T [-disclose a,b | -list] [-holder-key H.jwk -aud A -nonce N] | token verify -trust TRUST.json -issuers AGENTS.json [-aud A -nonce N] [-json] TOKEN|-", runToken},
	"verify-receipt": {"verify-receipt (-trust TRUST.json | -log-vkey VKEY -jwks JWKS.json [-policy POLICY]) [-agents AGENTS.json] [-json] RECEIPT|-", runVerifyReceipt},
}

// errUsage marks errors that are the caller's words, not the world's.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vesper: unknown command %q (run vesper help)\n", args[0])
		return 2
	}
	err := c.run(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "usage: vesper %s\n", c.usage)
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "vesper %s: %v\nusage: vesper %s\n", args[0], err, c.usage)
		return 2
	}
	fmt.Fprintf(stderr, "vesper %s: %s\n", args[0], oneLine(err.Error()))
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vesper COMMAND [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  vesper %s\n", commands[n].usage)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlags returns a flag set that reports errors instead of printing them.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args and wraps flag errors as usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}
