package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// config is every setting of vesperlog. Each is a flag; a YAML file given
// with -config sets any of them by the same name, and flags given on the
// command line win over the file.
type config struct {
	Addr               string        `yaml:"addr"`
	PublicURL          string        `yaml:"public-url"`
	Storage            string        `yaml:"storage"`
	Data               string        `yaml:"data"`
	VettingOrigin      string        `yaml:"vetting-origin"`
	VettingKey         string        `yaml:"vetting-key"`
	ReceiptKey         string        `yaml:"receipt-key"`
	DBDSN              string        `yaml:"db-dsn"`
	S3Bucket           string        `yaml:"s3-bucket"`
	S3Endpoint         string        `yaml:"s3-endpoint"`
	S3Region           string        `yaml:"s3-region"`
	Spanner            string        `yaml:"spanner"`
	GCSBucket          string        `yaml:"gcs-bucket"`
	CheckpointInterval time.Duration `yaml:"checkpoint-interval"`
	IssuedAtWindow     time.Duration `yaml:"iat-window"`
	WitnessPolicy      string        `yaml:"witness-policy"`
	WitnessFailOpen    bool          `yaml:"witness-fail-open"`
	PublishTimeout     time.Duration `yaml:"publish-timeout"`
	MaxInFlight        int           `yaml:"max-inflight"`
	STICTRoots         string        `yaml:"stict-roots"`
	STICTOrigin        string        `yaml:"stict-origin"`
	STICTKey           string        `yaml:"stict-key"`
	STICTNoteKey       string        `yaml:"stict-note-key"`
	STICTWitnessPolicy string        `yaml:"stict-witness-policy"`
	RequiredSCTs       int           `yaml:"required-scts"`
	MLDSACheckpoints   bool          `yaml:"mldsa-checkpoints"`
	LogFormat          string        `yaml:"log-format"`
	LogLevel           string        `yaml:"log-level"`
	Pprof              string        `yaml:"pprof"`
	TLSCert            string        `yaml:"tls-cert"`
	TLSKey             string        `yaml:"tls-key"`
}

// parseConfig parses the server's command line, as vesperlog does.
func parseConfig(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("vesperlog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, c.load(*file, fs)
}

// flags defines every setting's flag on fs, and -config, whose value it
// returns. It is the one source of vesperlog -h and of README.md's
// configuration reference (TestConfigReference).
func (c *config) flags(fs *flag.FlagSet) *string {
	var file string
	fs.StringVar(&file, "config", "", "YAML file setting any of these flags by name")
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.PublicURL, "public-url", "", "URL clients reach this server at (default http://<listening address>, https:// with -tls-cert)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate chain (with -tls-key); both files are read again when they change")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key of -tls-cert; refused if group or others can read it")
	c.storageFlags(fs)
	fs.StringVar(&c.VettingOrigin, "vetting-origin", "", "origin of the vetting log (default <public host>/vetting, or the existing key's name)")
	fs.StringVar(&c.VettingKey, "vetting-key", "", "vetting log checkpoint key file (default <data>/keys/vetting-checkpoint.key)")
	fs.StringVar(&c.ReceiptKey, "receipt-key", "", "receipt signing key, a private ES256 JWK; rotate it with vesperlog keys rotate-receipt (default <data>/keys/receipt-es256.jwk)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", time.Second, "how often checkpoints are published (receipts wait for one); at least 100ms on posix, 1s on aws, 1.2s on gcp")
	fs.DurationVar(&c.IssuedAtWindow, "iat-window", 10*time.Minute, "how far a statement's iat may be from the log's clock")
	fs.StringVar(&c.WitnessPolicy, "witness-policy", "", "C2SP tlog-policy of the witnesses that must cosign each checkpoint (with URLs)")
	fs.BoolVar(&c.WitnessFailOpen, "witness-fail-open", false, "publish checkpoints without the quorum when witnesses fail (not recommended)")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 30*time.Second, "how long a submission waits for a checkpoint covering it")
	fs.IntVar(&c.MaxInFlight, "max-inflight", 0, fmt.Sprintf("most submitted entries in flight (admitted, not yet answered) in both logs, each request counting %d more than its entries; past it submissions get 503 with Retry-After before they are checked (0: %d per core per second of -checkpoint-interval, at least 1s)", vlog.RequestCost, vlog.EntriesPerCore))
	fs.StringVar(&c.STICTRoots, "stict-roots", "", "PEM file of the STI roots the STI-CT log accepts chains to (the STI-CT log runs only if set)")
	fs.StringVar(&c.STICTOrigin, "stict-origin", "", "origin of the STI-CT log (default <public host>/stict, or the existing log's)")
	fs.StringVar(&c.STICTKey, "stict-key", "", "STI-CT log key (SCTs and checkpoints), a private P-256 JWK (default <data>/keys/stict-p256.jwk)")
	fs.StringVar(&c.STICTNoteKey, "stict-note-key", "", "Ed25519 key that also signs each STI-CT checkpoint, for C2SP witnesses (default <data>/keys/stict-checkpoint.key)")
	fs.IntVar(&c.RequiredSCTs, "required-scts", 1, "SCTs from distinct trusted STI-CT logs a delegate certificate needs, in POST /api/verify-passport and the trust document's sti member (this server trusts only its own STI-CT log, so 1)")
	fs.BoolVar(&c.MLDSACheckpoints, "mldsa-checkpoints", false, "also sign each log's checkpoints with an ML-DSA-44 key (<checkpoint key>-mldsa.key, created on first use)")
	fs.StringVar(&c.STICTWitnessPolicy, "stict-witness-policy", "", "C2SP tlog-policy (with URLs) for the STI-CT log's checkpoints, when its witnesses differ (default -witness-policy's)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	fs.StringVar(&c.Pprof, "pprof", "", "serve net/http/pprof on this loopback address, such as 127.0.0.1:6060, on its own listener (off by default; other addresses are refused)")
	return &file
}

// load applies the -config file, if any, under the flags given in fs, and
// completes and checks the settings.
func (c *config) load(file string, fs *flag.FlagSet) error {
	if file != "" {
		if err := c.applyFile(file, fs); err != nil {
			return err
		}
	}
	return c.complete()
}

// applyFile sets from a YAML file every setting not given as a flag.
func (c *config) applyFile(path string, fs *flag.FlagSet) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	var fromFile config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fromFile); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	set := func(name string, dst, src any) {
		if given[name] {
			return
		}
		switch d := dst.(type) {
		case *string:
			if s := src.(string); s != "" {
				*d = s
			}
		case *time.Duration:
			if v := src.(time.Duration); v != 0 {
				*d = v
			}
		case *int:
			if v := src.(int); v != 0 {
				*d = v
			}
		}
	}
	set("addr", &c.Addr, fromFile.Addr)
	set("public-url", &c.PublicURL, fromFile.PublicURL)
	set("storage", &c.Storage, fromFile.Storage)
	set("data", &c.Data, fromFile.Data)
	set("vetting-origin", &c.VettingOrigin, fromFile.VettingOrigin)
	set("vetting-key", &c.VettingKey, fromFile.VettingKey)
	set("receipt-key", &c.ReceiptKey, fromFile.ReceiptKey)
	set("db-dsn", &c.DBDSN, fromFile.DBDSN)
	set("s3-bucket", &c.S3Bucket, fromFile.S3Bucket)
	set("s3-endpoint", &c.S3Endpoint, fromFile.S3Endpoint)
	set("s3-region", &c.S3Region, fromFile.S3Region)
	set("spanner", &c.Spanner, fromFile.Spanner)
	set("gcs-bucket", &c.GCSBucket, fromFile.GCSBucket)
	set("checkpoint-interval", &c.CheckpointInterval, fromFile.CheckpointInterval)
	set("iat-window", &c.IssuedAtWindow, fromFile.IssuedAtWindow)
	set("witness-policy", &c.WitnessPolicy, fromFile.WitnessPolicy)
	set("publish-timeout", &c.PublishTimeout, fromFile.PublishTimeout)
	set("max-inflight", &c.MaxInFlight, fromFile.MaxInFlight)
	set("stict-roots", &c.STICTRoots, fromFile.STICTRoots)
	set("stict-origin", &c.STICTOrigin, fromFile.STICTOrigin)
	set("stict-key", &c.STICTKey, fromFile.STICTKey)
	set("stict-note-key", &c.STICTNoteKey, fromFile.STICTNoteKey)
	set("stict-witness-policy", &c.STICTWitnessPolicy, fromFile.STICTWitnessPolicy)
	set("required-scts", &c.RequiredSCTs, fromFile.RequiredSCTs)
	set("log-format", &c.LogFormat, fromFile.LogFormat)
	set("log-level", &c.LogLevel, fromFile.LogLevel)
	set("pprof", &c.Pprof, fromFile.Pprof)
	set("tls-cert", &c.TLSCert, fromFile.TLSCert)
	set("tls-key", &c.TLSKey, fromFile.TLSKey)
	if !given["witness-fail-open"] && fromFile.WitnessFailOpen {
		c.WitnessFailOpen = true
	}
	if !given["mldsa-checkpoints"] && fromFile.MLDSACheckpoints {
		c.MLDSACheckpoints = true
	}
	return nil
}

// complete fills in the defaults that depend on other settings.
func (c *config) complete() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("-addr %q: %w", c.Addr, err)
	}
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(c.Data, rel)
		}
	}
	def(&c.VettingKey, "keys/vetting-checkpoint.key")
	def(&c.ReceiptKey, defaultReceiptKey)
	def(&c.STICTKey, "keys/stict-p256.jwk")
	def(&c.STICTNoteKey, "keys/stict-checkpoint.key")
	if c.STICTWitnessPolicy == "" {
		c.STICTWitnessPolicy = c.WitnessPolicy
	}
	if err := c.checkStorage(); err != nil {
		return err
	}
	if err := c.checkFiles(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("-tls-cert and -tls-key go together")
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("-public-url %q is not an absolute http or https URL", c.PublicURL)
		}
	}
	if min := minCheckpointInterval[c.storageName()]; c.CheckpointInterval < min {
		return fmt.Errorf("-checkpoint-interval %s is below the %s minimum of -storage %s", c.CheckpointInterval, min, c.storageName())
	}
	if c.IssuedAtWindow <= 0 {
		return fmt.Errorf("-iat-window must be positive")
	}
	if c.RequiredSCTs < 1 {
		return fmt.Errorf("-required-scts must be at least 1")
	}
	if c.RequiredSCTs > 1 {
		// The trust document lists one STI-CT log: its own.
		return fmt.Errorf("-required-scts %d: this server trusts one STI-CT log, its own, so a certificate can carry at most 1 SCT that counts", c.RequiredSCTs)
	}
	if c.MaxInFlight < 0 {
		return fmt.Errorf("-max-inflight must be 0 (the default) or positive")
	}
	if _, err := newLogHandler(io.Discard, c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	return checkPprofAddr(c.Pprof)
}

// maxInFlight is -max-inflight, or its default for this machine and
// checkpoint interval.
func (c *config) maxInFlight() int {
	if c.MaxInFlight > 0 {
		return c.MaxInFlight
	}
	return vlog.DefaultMaxInFlight(c.CheckpointInterval)
}

// minCheckpointInterval is each Tessera driver's.
var minCheckpointInterval = map[string]time.Duration{
	storage.POSIX: 100 * time.Millisecond,
	storage.AWS:   time.Second,
	storage.GCP:   1200 * time.Millisecond,
}

// storageFlags defines the flags that choose and locate the backend,
// shared by the server and its migrate and agents commands.
func (c *config) storageFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Storage, "storage", storage.POSIX, "storage backend: posix, aws (MySQL-compatible database + S3-compatible bucket) or gcp (Spanner + GCS)")
	fs.StringVar(&c.Data, "data", "vesperlog-data", "data directory: the logs with posix, and the default place of the key files with every backend")
	fs.StringVar(&c.DBDSN, "db-dsn", "", "aws: MySQL DSN naming a database, user:password@tcp(host:3306)/vesper; each log gets databases vesper_<log>")
	fs.StringVar(&c.S3Bucket, "s3-bucket", "", "aws: S3 bucket holding the tiles (logs under vetting/ and stict/), created if missing")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "aws: S3-compatible endpoint URL, path-style (default AWS's); credentials come from the AWS SDK's environment")
	fs.StringVar(&c.S3Region, "s3-region", "", "aws: S3 region (default AWS_REGION, else us-east-1)")
	fs.StringVar(&c.Spanner, "spanner", "", "gcp: Spanner database projects/P/instances/I/databases/D; each log uses databases D-<log>")
	fs.StringVar(&c.GCSBucket, "gcs-bucket", "", "gcp: GCS bucket holding the tiles and the shared state")
}

// checkStorage checks the storage flags before anything is written: the
// backend's name and the settings it needs.
func (c *config) checkStorage() error {
	switch c.storageName() {
	case storage.POSIX:
		if c.Data == "" {
			return errors.New("-storage posix needs -data")
		}
	case storage.AWS:
		if c.DBDSN == "" || c.S3Bucket == "" {
			return errors.New("-storage aws needs -db-dsn and -s3-bucket")
		}
	case storage.GCP:
		if c.Spanner == "" || c.GCSBucket == "" {
			return errors.New("-storage gcp needs -spanner and -gcs-bucket")
		}
	default:
		return fmt.Errorf("-storage %q: want %s, %s or %s", c.Storage, storage.POSIX, storage.AWS, storage.GCP)
	}
	return nil
}

// checkFiles reads the files the settings name and the server only reads,
// so that a mistake in one is refused before the first start writes keys
// and state.
func (c *config) checkFiles() error {
	for _, f := range []struct{ flag, path string }{{"-witness-policy", c.WitnessPolicy}, {"-stict-witness-policy", c.STICTWitnessPolicy}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		if _, err := policy.Parse(b); err != nil {
			return fmt.Errorf("%s %s is not a C2SP tlog-policy file: %w", f.flag, f.path, err)
		}
	}
	if c.STICTRoots != "" {
		b, err := os.ReadFile(c.STICTRoots)
		if err != nil {
			return fmt.Errorf("-stict-roots: %w", err)
		}
		if _, err := stict.ParseRoots(b); err != nil {
			return fmt.Errorf("-stict-roots %s is not a PEM file of STI root certificates: %w", c.STICTRoots, err)
		}
	}
	return nil
}

// openStorage opens the backend the storage flags name, once checked:
// for the commands, which take the storage flags alone.
func (c *config) openStorage(ctx context.Context) (storage.Backend, error) {
	if err := c.checkStorage(); err != nil {
		return nil, cli.Usagef("%v", err)
	}
	return storage.Open(ctx, c.storage())
}

// storage is the backend the flags choose.
func (c *config) storage() storage.Config {
	sc := storage.Config{Backend: c.Storage, Dir: c.Data, DSN: c.DBDSN, Bucket: c.S3Bucket,
		S3Endpoint: c.S3Endpoint, S3Region: c.S3Region, Spanner: c.Spanner}
	if c.storageName() == storage.GCP {
		sc.Bucket = c.GCSBucket
	}
	return sc
}

func (c *config) storageName() string {
	if c.Storage == "" {
		return storage.POSIX
	}
	return c.Storage
}

// agentsWhere says where the agent registry is, for people.
func (c *config) agentsWhere() string {
	switch c.storageName() {
	case storage.AWS:
		return "VesperState " + state.AgentsName + " in the -db-dsn database (vesperlog agents get|put)"
	case storage.GCP:
		return "gs://" + c.GCSBucket + "/state/" + state.AgentsName + " (vesperlog agents get|put)"
	}
	return filepath.Join(c.Data, state.AgentsName)
}
