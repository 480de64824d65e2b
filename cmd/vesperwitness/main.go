// Command vesperwitness runs a C2SP tlog-witness (package witness).
//
//	vesperwitness keygen -name witness.example/w1 -out witness.key [-alg ed25519|ml-dsa-44]
//	vesperwitness add-log -config logs.policy VKEY [URL]
//	vesperwitness list-logs -config logs.policy
//	vesperwitness serve -key witness.key -config logs.policy [-state DIR] [-addr 127.0.0.1:8090]
//	vesperwitness feed -log-url URL -log-vkey VKEY -witness-url URL -witness-vkey VKEY [-once | -interval 1m]
//
// "vesperwitness COMMAND -h" prints a command's flags (package
// cmd/internal/cli).
//
// keygen makes an Ed25519 key (the default; it cosigns as cosignature/v1
// and prints "cosignature/v1 vkey: ...") or an ML-DSA-44 key (-alg
// ml-dsa-44, which C2SP recommends; it prints "ml-dsa-44 vkey: ..."), and
// serve cosigns with whichever it is given. The logs it witnesses are a
// C2SP tlog-policy file of log lines (and "quorum none"), so the same file
// format serves witnesses and verifiers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness"
	"github.com/vesperlog/vesperlog/witness/policy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(program.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// program is vesperwitness's commands: the synopses of the package doc.
var program = &cli.Program{Name: "vesperwitness", Commands: []*cli.Command{
	{Name: "keygen", Synopsis: "-name NAME -out FILE [-alg ed25519|ml-dsa-44]",
		Summary: "make the witness's key",
		Description: "Writes a new private key named NAME to FILE (mode 0600) and prints its vkey: " +
			"\"cosignature/v1 vkey: ...\" for Ed25519, \"ml-dsa-44 vkey: ...\" for ML-DSA-44. " +
			"Refuses to overwrite an existing key.",
		Flags: keygenFlags},
	{Name: "add-log", Synopsis: "-config FILE VKEY [URL]",
		Summary: "add a log to the logs file the witness witnesses",
		Description: "Adds the log with checkpoint vkey VKEY (and its optional tlog-tiles URL) to FILE, a C2SP " +
			"tlog-policy of log lines and \"quorum none\", creating FILE if it does not exist. Restart serve to use it.",
		Flags: addLogFlags},
	{Name: "list-logs", Synopsis: "-config FILE",
		Summary:     "list the logs in a logs file",
		Description: "Prints each log of FILE, a witness's logs file, as its origin and vkey, tab-separated.",
		Flags:       listLogsFlags},
	{Name: "serve", Synopsis: "-key FILE -config FILE [-state DIR] [-addr ADDR]",
		Summary: "run the witness",
		Description: "Serves C2SP tlog-witness add-checkpoint for the logs of the -config file, cosigning with the " +
			"-key key, and keeps each log's latest cosigned checkpoint in DIR so that it never cosigns an " +
			"inconsistent one. Logs that do not ask witnesses themselves can be fed with vesperwitness feed.",
		Flags: serveFlags},
	{Name: "feed", Synopsis: "-log-url URL -log-vkey VKEY -witness-url URL -witness-vkey VKEY [-once | -interval D]",
		Summary: "send a log's checkpoints to a witness",
		Description: "Reads the log's checkpoint, proves it consistent with the witness's latest for that log, and " +
			"submits it for cosigning; prints the cosigned checkpoint with -once, and otherwise repeats every -interval.",
		Flags: feedFlags},
}}

func keygenFlags(fs *flag.FlagSet) cli.Action {
	name := fs.String("name", "", "the witness's name, e.g. witness.example/w1")
	out := fs.String("out", "", "where to write the private key")
	alg := fs.String("alg", witness.Ed25519, "the key's algorithm, "+witness.Ed25519+" or "+witness.MLDSA44)
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *name == "" || *out == "" || len(args) > 0 {
			return cli.Usagef("keygen needs -name and -out, and no arguments")
		}
		if *alg != witness.Ed25519 && *alg != witness.MLDSA44 {
			return cli.Usagef("-alg is %s or %s, not %q", witness.Ed25519, witness.MLDSA44, *alg)
		}
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a key", *out)
		}
		skey, vkey, err := witness.GenerateKey(*name, *alg)
		if err != nil {
			return err
		}
		if err := keys.WriteFile(*out, []byte(skey+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "private key: %s (keep it secret)\n%s: %s\n", *out, vkeyLabel(*alg), vkey)
		return nil
	}
}

func addLogFlags(fs *flag.FlagSet) cli.Action {
	config := fs.String("config", "", "the logs witnessed, a C2SP tlog-policy file (created if missing)")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *config == "" || len(args) < 1 || len(args) > 2 {
			return cli.Usagef("give -config FILE, a VKEY and optionally its URL")
		}
		p, err := readLogs(*config, true)
		if err != nil {
			return err
		}
		line := "log " + strings.Join(args, " ")
		np, err := policy.Parse([]byte(logLines(p) + line + "\nquorum none\n"))
		if err != nil {
			return err
		}
		if err := keys.WriteFile(*config, []byte(np.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "witnessing %s\n", logCount(np))
		return nil
	}
}

func listLogsFlags(fs *flag.FlagSet) cli.Action {
	config := fs.String("config", "", "the logs witnessed, a C2SP tlog-policy file")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		p, err := readLogs(*config, false)
		if err != nil {
			return err
		}
		for _, l := range p.Logs() {
			fmt.Fprintf(stdout, "%s\t%s\n", l.Origin, l.VKey)
		}
		return nil
	}
}

func serveFlags(fs *flag.FlagSet) cli.Action {
	keyFile := fs.String("key", "", "the witness's private key (from keygen, mode 0600)")
	config := fs.String("config", "", "the logs witnessed, a C2SP tlog-policy file")
	state := fs.String("state", "vesperwitness-state", "the state directory")
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		return serve(ctx, *keyFile, *config, *state, *addr, stdout)
	}
}

func feedFlags(fs *flag.FlagSet) cli.Action {
	logURL := fs.String("log-url", "", "the log's tlog-tiles prefix")
	logVKey := fs.String("log-vkey", "", "the log's checkpoint vkey")
	witnessURL := fs.String("witness-url", "", "the witness's submission prefix")
	witnessVKey := fs.String("witness-vkey", "", "the witness's vkey (Ed25519 cosignature/v1 or ML-DSA-44)")
	once := fs.Bool("once", false, "feed the current checkpoint, print it cosigned, and exit")
	interval := fs.Duration("interval", time.Minute, "how often to feed")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *logURL == "" || *logVKey == "" || *witnessURL == "" || *witnessVKey == "" {
			return cli.Usagef("feed needs -log-url, -log-vkey, -witness-url and -witness-vkey")
		}
		lv, err := policy.NewLogVerifier(*logVKey)
		if err != nil {
			return fmt.Errorf("-log-vkey: %w", err)
		}
		wv, err := policy.NewWitnessVerifier(*witnessVKey)
		if err != nil {
			return fmt.Errorf("-witness-vkey: %w", err)
		}
		lu, err := url.Parse(strings.TrimSuffix(*logURL, "/") + "/")
		if err != nil {
			return err
		}
		wu, err := url.Parse(*witnessURL)
		if err != nil {
			return err
		}
		f := &witness.Feeder{Log: lu, LogKey: lv, Witness: wu, WitnessKey: wv}
		if !*once {
			return f.Run(ctx, *interval)
		}
		signed, err := f.Once(ctx)
		if err != nil {
			return err
		}
		_, err = stdout.Write(signed)
		return err
	}
}

// readLogs reads a witness's logs file; a missing one is empty if allowed.
func readLogs(path string, missingOK bool) (*policy.Policy, error) {
	if path == "" {
		return nil, cli.Usagef("-config is required")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return policy.Parse([]byte("quorum none\n"))
	}
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(p.Witnesses()) > 0 || p.Quorum() != "none" {
		return nil, fmt.Errorf("%s: a witness's logs file lists logs only, with quorum none", path)
	}
	return p, nil
}

func logLines(p *policy.Policy) string {
	var b strings.Builder
	for _, l := range p.Logs() {
		b.WriteString("log " + l.VKey)
		if l.URL != "" {
			b.WriteString(" " + l.URL)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func serve(ctx context.Context, keyFile, config, state, addr string, stdout io.Writer) error {
	if keyFile == "" {
		return cli.Usagef("serve needs -key")
	}
	k, err := readKey(keyFile)
	if err != nil {
		return err
	}
	logs, err := readLogs(config, false)
	if err != nil {
		return err
	}
	w, err := witness.New(k.Signer, logs, state)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "vesperwitness listening on http://%s\n%s: %s\nwitnessing %s\n", ln.Addr(), vkeyLabel(k.Alg), k.VKey, logCount(logs))
	hs := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// vkeyLabel names what a printed vkey verifies; scripts find the vkey by
// it, so it stays "cosignature/v1 vkey" for Ed25519.
func vkeyLabel(alg string) string {
	if alg == witness.MLDSA44 {
		return "ml-dsa-44 vkey"
	}
	return "cosignature/v1 vkey"
}

// readKey reads the witness's private key, refusing a file that others can
// read, as storage/keys does for every private key.
func readKey(path string) (*witness.Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key %s is readable by others (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	k, err := witness.ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("witness key %s: %w", path, err)
	}
	return k, nil
}

// logCount says how many logs a witness witnesses, in words (a log with
// two keys is one log).
func logCount(p *policy.Policy) string {
	origins := map[string]bool{}
	for _, l := range p.Logs() {
		origins[l.Origin] = true
	}
	n := len(origins)
	if n == 1 {
		return "1 log"
	}
	return fmt.Sprintf("%d logs", n)
}
