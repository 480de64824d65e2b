package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// logFlags are the flags every log-reading command shares.
type logFlags struct {
	trust, name, url, dir string
	logURL                string // set by open: where the log's API is
}

func (lf *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&lf.trust, "trust", "", "the transparency configuration pinned with vesper trust")
	fs.StringVar(&lf.name, "log", "vetting", "which of its logs: vetting, or stict (any log with an RFC 6962 key is read as static-ct-api)")
	fs.StringVar(&lf.url, "url", "", "read the log from this tlog-tiles URL instead of the one pinned")
	fs.StringVar(&lf.dir, "dir", "", "read the log from this directory (a mirror, or a copy of a POSIX log)")
}

// open returns a verified view of the log the flags name.
func (lf *logFlags) open() (*client.Log, error) {
	if lf.trust == "" {
		return nil, usageErr("-trust is required")
	}
	b, err := os.ReadFile(lf.trust)
	if err != nil {
		return nil, err
	}
	c, err := receipts.ParseConfiguration(b)
	if err != nil {
		return nil, err
	}
	t, err := c.Trust()
	if err != nil {
		return nil, err
	}
	var lc *receipts.LogConfiguration
	for i := range c.Logs {
		if c.Logs[i].Name == lf.name {
			lc = &c.Logs[i]
		}
	}
	if lc == nil {
		return nil, fmt.Errorf("%s has no log %q", lf.trust, lf.name)
	}
	// A log signing RFC 6962 tree heads (key type 0x05) is a
	// static-ct-api log: the STI-CT log.
	staticCT := isStaticCT(lc.VKey)
	lf.logURL = lc.URL
	var f client.Fetcher
	switch {
	case lf.dir != "" && staticCT:
		f = client.NewStaticCTDirFetcher(lf.dir)
	case lf.dir != "":
		f = client.NewDirFetcher(lf.dir)
	case lf.url != "":
		lf.logURL = lf.url
		f, err = client.NewHTTPFetcher(lf.url, client.HTTPOptions{StaticCT: staticCT})
	default:
		f, err = client.NewHTTPFetcher(lc.URL, client.HTTPOptions{StaticCT: staticCT})
	}
	if err != nil {
		return nil, err
	}
	return &client.Log{Origin: lc.Origin, Policy: t.PolicyFor(lc.Origin), Fetch: f, StaticCT: staticCT}, nil
}

// isStaticCT says whether vkey is an RFC 6962 note key (type 0x05).
func isStaticCT(vkey string) bool {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return false
	}
	k, err := base64.StdEncoding.DecodeString(parts[2])
	return err == nil && len(k) > 0 && k[0] == 0x05
}

// evidenceErr writes evidence, if err is some, and says where.
func evidenceErr(err error, path string) error {
	var ev *client.Evidence
	if !errors.As(err, &ev) {
		return err
	}
	if werr := ev.Write(path); werr != nil {
		return fmt.Errorf("%v (and the evidence could not be written: %v)", err, werr)
	}
	return fmt.Errorf("%v; evidence written to %s (check it with: vesper check-evidence -log-vkey VKEY %s)", err, path, path)
}

func checkpointFlags(fs *flag.FlagSet) cli.Action {
	var lf logFlags
	lf.register(fs)
	state := fs.String("state", "", "keep the trusted checkpoint here, moving it only to consistent ones")
	evidence := fs.String("evidence", "vesper-evidence.json", "where to write evidence of misbehaviour")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		l, err := lf.open()
		if err != nil {
			return err
		}
		var cp *policy.Checkpoint
		if *state != "" {
			var old *policy.Checkpoint
			if old, cp, err = l.Update(ctx, *state); err != nil {
				return evidenceErr(err, *evidence)
			}
			if old != nil && old.Size != cp.Size {
				fmt.Fprintf(stdout, "consistent with the trusted size %d\n", old.Size)
			}
		} else if cp, _, err = l.Checkpoint(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\nsize %d\nroot %s\ncosigned by %s\n", cp.Origin, cp.Size, base64.StdEncoding.EncodeToString(cp.Hash[:]), orNone(cp.Cosigners))
		return nil
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no witnesses"
	}
	return strings.Join(s, ", ")
}

func proofFlags(fs *flag.FlagSet, kind string) cli.Action {
	var lf logFlags
	lf.register(fs)
	index, leafHash := new(string), new(string)
	old, newSize := new(uint64), new(uint64)
	if kind == "inclusion" {
		fs.StringVar(index, "index", "", "the entry's index")
		fs.StringVar(leafHash, "leaf-hash", "", "the entry's RFC 6962 leaf hash, base64 (instead of -index)")
	} else {
		fs.Uint64Var(old, "old", 0, "the smaller tree size (required)")
		fs.Uint64Var(newSize, "new", 0, "the larger tree size (default: the log's size)")
	}
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		l, err := lf.open()
		if err != nil {
			return err
		}
		cp, _, err := l.Checkpoint(ctx)
		if err != nil {
			return err
		}
		if kind == "consistency" {
			n := *newSize
			if n == 0 {
				n = cp.Size
			}
			if *old == 0 || *old > n || n > cp.Size {
				return usageErr("want 0 < -old <= -new <= the log's size %d", cp.Size)
			}
			p, rm, rn, err := l.ConsistencyBetween(ctx, cp, *old, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "size %d (root %s) is a prefix of size %d (root %s), both consistent with the checkpoint of size %d; proof:\n",
				*old, base64.StdEncoding.EncodeToString(rm), n, base64.StdEncoding.EncodeToString(rn), cp.Size)
			for _, h := range p {
				fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(h))
			}
			return nil
		}
		var idx uint64
		var h []byte
		switch {
		case *leafHash != "":
			if h, err = base64.StdEncoding.DecodeString(*leafHash); err != nil || len(h) != 32 {
				return usageErr("-leaf-hash must be a base64 SHA-256 hash")
			}
			if idx, err = l.FindLeaf(ctx, cp, h); err != nil {
				return err
			}
		case *index != "":
			if idx, err = strconv.ParseUint(*index, 10, 64); err != nil {
				return usageErr("-index must be a decimal")
			}
			for e, err := range l.Entries(ctx, cp, idx, 1) {
				if err != nil {
					return err
				}
				if h, err = l.LeafHash(e); err != nil {
					return err
				}
				break
			}
		default:
			return usageErr("give -index or -leaf-hash")
		}
		if err := l.VerifyInclusion(ctx, cp, idx, h); err != nil {
			return err
		}
		p, _ := l.InclusionProof(ctx, cp, idx)
		fmt.Fprintf(stdout, "entry %d (leaf hash %s) is in the tree of size %d; proof:\n", idx, base64.StdEncoding.EncodeToString(h), cp.Size)
		for _, x := range p {
			fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(x))
		}
		return nil
	}
}

func auditFlags(fs *flag.FlagSet) cli.Action {
	var lf logFlags
	lf.register(fs)
	agentsFile := fs.String("agents", "", "agents registry: verify every entry's agent signature")
	resume := fs.String("resume", "", "keep the audit's position here, and resume from it")
	state := fs.String("state", "", "audit the trusted checkpoint, moved to the latest consistent one")
	evidence := fs.String("evidence", "vesper-evidence.json", "where to write evidence of misbehaviour")
	workers := fs.Uint("workers", 4, "entry bundles fetched at once")
	rootsFile := fs.String("roots", "", "STI-CT log: the STI roots (PEM) every chain must verify to (default: the log's get-roots)")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		l, err := lf.open()
		if err != nil {
			return err
		}
		if l.StaticCT && *agentsFile != "" || !l.StaticCT && *rootsFile != "" {
			return usageErr("-agents checks the vetting log; -roots the STI-CT log")
		}
		var agents *vetting.Agents
		if *agentsFile != "" {
			b, err := os.ReadFile(*agentsFile)
			if err != nil {
				return err
			}
			if agents, err = vetting.ParseAgents(b); err != nil {
				return err
			}
		}
		what := "every entry decodes"
		var check func(uint64, []byte) error
		if l.StaticCT {
			if check, err = chainCheck(ctx, l, lf.logURL, *rootsFile); err != nil {
				return err
			}
			what = "every chain verifies to the STI roots at its entry's time, with issuers that hash to their fingerprints and a well-formed TNAuthList"
			if *rootsFile == "" {
				what += " (the roots the log serves)"
			}
		} else {
			check = vettingCheck(agents)
			if agents != nil {
				what = "every entry decodes and its agent signature verifies, and no agent logged after its revocation"
			}
		}
		// The checks are ready (their files read) before the trusted state moves.
		var cp *policy.Checkpoint
		if *state != "" {
			if _, cp, err = l.Update(ctx, *state); err != nil {
				return evidenceErr(err, *evidence)
			}
		} else if cp, _, err = l.Checkpoint(ctx); err != nil {
			return err
		}
		tty := isTerminal(stdout)
		progress := func(p client.AuditProgress) {
			done := p.Done - p.Resumed
			rate := float64(done) / max(p.Elapsed.Seconds(), 1e-3)
			eta := "-"
			if rate > 0 {
				eta = (time.Duration(float64(p.Total-p.Done)/rate) * time.Second).Truncate(time.Second).String()
			}
			line := fmt.Sprintf("%d/%d entries (%.1f%%), %.0f entries/s, ETA %s", p.Done, p.Total, 100*float64(p.Done)/float64(max(p.Total, 1)), rate, eta)
			if tty {
				fmt.Fprintf(stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(stdout, line)
			}
		}
		// An entry the log should have refused is reported, and the audit
		// goes on to check the rest and the whole tree; it then fails.
		badEntry := func(i uint64, err error) {
			if tty {
				fmt.Fprint(stdout, "\r\033[K")
			}
			fmt.Fprintf(stdout, "entry %d: %s\n", i, oneLine(err.Error()))
		}
		start := time.Now()
		err = l.Audit(ctx, cp, client.AuditOptions{Check: check, BadEntry: badEntry, Progress: progress, ResumeFile: *resume, Workers: *workers})
		if tty {
			fmt.Fprintln(stdout)
		}
		if err != nil {
			return fmt.Errorf("audit failed: %w", err)
		}
		fmt.Fprintf(stdout, "audit OK: %s at size %d: the tree recomputed from its entries has the checkpoint's root; the tiles agree; %s (%s)\n",
			cp.Origin, cp.Size, what, time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// vettingCheck checks that a vetting entry decodes and, with agents, that
// its agent signature verifies and that its agent was not revoked at its
// log time (verifiers refuse such an entry; a log that applied the same
// registry would have refused it).
func vettingCheck(agents *vetting.Agents) func(uint64, []byte) error {
	return func(_ uint64, e []byte) error {
		leaf, err := vetting.ParseLeaf(e)
		if err != nil {
			return err
		}
		if agents == nil {
			return nil
		}
		a, err := agents.Lookup(leaf.AgentKey)
		if err != nil {
			return err
		}
		if err := leaf.Verify(&a.Key); err != nil {
			return err
		}
		if err := a.ValidAt(leaf.LoggedAt()); err != nil {
			return revokedEntry{fmt.Errorf("logged at %s: %w", leaf.LoggedAt().UTC().Format(time.RFC3339Nano), err)}
		}
		return nil
	}
}

// revokedEntry is an entry logged at or after its agent's revocation: the
// audit reports it and goes on (client.ErrBadEntry).
type revokedEntry struct{ error }

func (e revokedEntry) Is(target error) bool { return target == client.ErrBadEntry }
func (e revokedEntry) Unwrap() error        { return e.error }

// chainCheck checks an STI-CT entry's chain against the roots in
// rootsFile, or those the log serves at logURL.
func chainCheck(ctx context.Context, l *client.Log, logURL, rootsFile string) (func(uint64, []byte) error, error) {
	f, ok := l.Fetch.(client.IssuerFetcher)
	if !ok {
		return nil, errors.New("this log's fetcher cannot read issuer certificates")
	}
	if rootsFile == "" {
		roots, err := client.FetchRoots(ctx, nil, logURL)
		if err != nil {
			return nil, fmt.Errorf("%w (or pin the STI roots with -roots)", err)
		}
		return client.ChainChecker(ctx, f, roots), nil
	}
	b, err := os.ReadFile(rootsFile)
	if err != nil {
		return nil, err
	}
	roots, err := stict.ParseRoots(b)
	if err != nil {
		return nil, fmt.Errorf("-roots %s: %w", rootsFile, err)
	}
	return client.ChainChecker(ctx, f, roots), nil
}

// isTerminal says whether w is a terminal (for the progress bar).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// monitorLine is one new entry, as monitor prints it.
type monitorLine struct {
	Index       uint64    `json:"index"`
	LogTime     time.Time `json:"log_time"`
	AgentKey    string    `json:"agent_key"`
	KYCDataHash string    `json:"kyc_data_hash"`
	Subject     string    `json:"sub,omitempty"`
}

// certLine is one new STI-CT entry, as monitor prints it.
type certLine struct {
	Index      uint64    `json:"index"`
	LogTime    time.Time `json:"log_time"`
	Type       string    `json:"type"` // certificate or precertificate
	SHA256     string    `json:"sha256"`
	Serial     string    `json:"serial"`
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	NotAfter   time.Time `json:"not_after"`
	TNAuthList string    `json:"tnauthlist"`
}

// certFilter selects STI-CT entries by what their TNAuthList authorizes;
// an empty filter selects all.
type certFilter struct {
	tn, spc, tnRange string
	rangeStart       string
	rangeCount       int64
}

// parse checks the filter's flags: a number as a TNAuthList writes it
// (RFC 8226: up to 15 digits, no "+" or spaces), an SPC as one.
func (f *certFilter) parse() error {
	if f.tn != "" && !isTN(f.tn) {
		return usageErr("-tn is a telephone number as certificates write it: up to 15 digits, no + or spaces (for example 12025550142)")
	}
	if f.spc != "" && (len(f.spc) > 64 || strings.ContainsFunc(f.spc, func(r rune) bool { return r <= ' ' || r > '~' })) {
		return usageErr("-spc is a service provider code: up to 64 printable ASCII characters")
	}
	if f.tnRange == "" {
		return nil
	}
	start, count, ok := strings.Cut(f.tnRange, ",")
	n, err := strconv.ParseInt(count, 10, 64)
	if !ok || err != nil || n <= 0 || !isTN(start) || strings.ContainsAny(start, "#*") {
		return usageErr("-tn-range is START,COUNT: up to 15 digits and a positive count (for example 12025550100,100)")
	}
	f.rangeStart, f.rangeCount = start, n
	return nil
}

// isTN says whether s is a TelephoneNumber of RFC 8226.
func isTN(s string) bool {
	return len(s) >= 1 && len(s) <= 15 && strings.Trim(s, "0123456789#*") == ""
}

func (f *certFilter) match(tns stict.TNAuthList) bool {
	return (f.tn == "" || tns.Covers(f.tn)) &&
		(f.spc == "" || tns.HasSPC(f.spc)) &&
		(f.rangeStart == "" || tns.Overlaps(f.rangeStart, f.rangeCount))
}

func monitorFlags(fs *flag.FlagSet) cli.Action {
	var lf logFlags
	lf.register(fs)
	state := fs.String("state", "", "where the trusted state is kept (required)")
	agent := fs.String("agent", "", "vetting log: print only entries by this agent key thumbprint")
	var cf certFilter
	fs.StringVar(&cf.tn, "tn", "", "STI-CT log: print only certificates authorizing this telephone number")
	fs.StringVar(&cf.tnRange, "tn-range", "", "STI-CT log: print only certificates authorizing a number in START,COUNT")
	fs.StringVar(&cf.spc, "spc", "", "STI-CT log: print only certificates naming this service provider code")
	once := fs.Bool("once", false, "check once and exit (for cron)")
	interval := fs.Duration("interval", 30*time.Second, "how often to check")
	evidence := fs.String("evidence", "vesper-evidence.json", "where to write evidence of misbehaviour")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *state == "" {
			return usageErr("-state is required")
		}
		if err := cf.parse(); err != nil {
			return err
		}
		l, err := lf.open()
		if err != nil {
			return err
		}
		if l.StaticCT && *agent != "" || !l.StaticCT && (cf.tn != "" || cf.spc != "" || cf.tnRange != "") {
			return usageErr("-agent filters the vetting log; -tn, -tn-range and -spc the STI-CT log")
		}
		enc := json.NewEncoder(stdout)
		for {
			old, cp, err := l.Update(ctx, *state)
			if err != nil {
				return evidenceErr(err, *evidence)
			}
			from := uint64(0)
			if old != nil {
				from = old.Size
			}
			for e, err := range l.Entries(ctx, cp, from, 4) {
				if err != nil {
					return err
				}
				// A bundle is only the log's word: prove each entry in the
				// checkpoint just trusted.
				h, err := l.LeafHash(e)
				if err != nil {
					return err
				}
				if err := l.VerifyInclusion(ctx, cp, e.Index, h); err != nil {
					return fmt.Errorf("entry %d as served is not in the log: %w", e.Index, err)
				}
				var line any
				if l.StaticCT {
					line, err = certEntry(e, &cf)
				} else {
					line, err = vettingEntry(e, *agent)
				}
				if err != nil {
					return fmt.Errorf("entry %d: %w", e.Index, err)
				}
				if line == nil {
					continue
				}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			if *once {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
	}
}

// vettingEntry is a vetting entry's line, or nil if agent filters it out.
func vettingEntry(e client.Entry, agent string) (any, error) {
	leaf, err := vetting.ParseLeaf(e.Data)
	if err != nil {
		return nil, err
	}
	tp := b64.EncodeToString(leaf.AgentKey[:])
	if agent != "" && tp != agent {
		return nil, nil
	}
	return monitorLine{Index: e.Index, LogTime: time.UnixMilli(int64(leaf.Timestamp)).UTC(), AgentKey: tp,
		KYCDataHash: b64.EncodeToString(leaf.Digest[:]), Subject: leaf.Subject}, nil
}

// certEntry is an STI-CT entry's line, or nil if f filters it out.
func certEntry(e client.Entry, f *certFilter) (any, error) {
	leaf, _, err := stict.ParseTileLeaf(e.Data)
	if err != nil {
		return nil, err
	}
	c, tns, err := leaf.Parse()
	if err != nil {
		return nil, err
	}
	if !f.match(tns) {
		return nil, nil
	}
	typ := "certificate"
	if leaf.Precert {
		typ = "precertificate"
	}
	sum := sha256.Sum256(c.Raw)
	return certLine{Index: e.Index, LogTime: time.UnixMilli(int64(leaf.Timestamp)).UTC(), Type: typ,
		SHA256: hex.EncodeToString(sum[:]), Serial: c.SerialNumber.Text(16), Subject: c.Subject.String(),
		Issuer: c.Issuer.String(), NotAfter: c.NotAfter.UTC(), TNAuthList: tns.String()}, nil
}

func compareFlags(fs *flag.FlagSet) cli.Action {
	var lf logFlags
	lf.register(fs)
	witness := fs.String("witness", "", "the witness's monitoring prefix (C2SP tlog-witness)")
	evidence := fs.String("evidence", "vesper-evidence.json", "where to write evidence of a split view")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *witness == "" {
			return usageErr("-witness is required")
		}
		l, err := lf.open()
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(l.Origin))
		u := strings.TrimSuffix(*witness, "/") + "/" + hex.EncodeToString(h[:]) + "/checkpoint"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		wcp, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("witness answered %s for %s", resp.Status, l.Origin)
		}
		mine, other, err := l.CompareWith(ctx, wcp, *witness)
		if err != nil {
			return evidenceErr(err, *evidence)
		}
		fmt.Fprintf(stdout, "consistent: the log is at size %d, the witness at %d\n", mine.Size, other.Size)
		return nil
	}
}

func checkEvidenceFlags(fs *flag.FlagSet) cli.Action {
	vkey := fs.String("log-vkey", "", "the log's verifier key")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *vkey == "" || fs.NArg() != 1 {
			return usageErr("give -log-vkey and one evidence file")
		}
		if err := oneVKey(*vkey); err != nil {
			return err
		}
		b, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		ev, conclusive, err := client.CheckEvidence(b, *vkey)
		if err != nil {
			return err
		}
		if conclusive {
			fmt.Fprintf(stdout, "evidence holds, conclusively: %s of %s: the log signed two different trees of one size: %s\n", ev.Kind, ev.Origin, ev.Detail)
		} else {
			fmt.Fprintf(stdout, "evidence holds: %s of %s: %s (both checkpoints are the log's; on its own this is not proof: the log owes a consistency proof between them)\n", ev.Kind, ev.Origin, ev.Detail)
		}
		return nil
	}
}
