package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"k8s.io/klog/v2"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/migrate"
)

// migrateDescription is migrate's -h.
const migrateDescription = "Copies the posix data directory DIR (both logs, the STI-CT issuers, the agent registry, " +
	"the receipt key history and the logs' bindings) into the backend the storage flags name, " +
	"and checks that each copied log has the source checkpoint's root. DIR's server must be " +
	"stopped; DIR is only read. The key files are not copied: start the servers on the target " +
	"with -data naming a directory that holds DIR's keys/."

// migrateFlags is migrate: it copies a posix data directory's logs into
// another backend.
func migrateFlags(fs *flag.FlagSet) cli.Action {
	c := &config{}
	c.storageFlags(fs)
	from := fs.String("from", "", "the posix data directory to copy")
	workers := fs.Uint("workers", migrate.DefaultWorkers, "entry bundles copied at once")
	vettingKey := fs.String("vetting-key", "", "the vetting log's key, read if DIR has no log-vetting.json (default DIR/keys/vetting-checkpoint.key)")
	stictKey := fs.String("stict-key", "", "the STI-CT log's key, read if DIR has no log-stict.json (default DIR/keys/stict-p256.jwk)")
	verbose := fs.Bool("v", false, "log Tessera's own progress too")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		switch {
		case len(args) > 0:
			return cli.Usagef("unexpected arguments %q", args)
		case *from == "":
			return cli.Usagef("-from DIR is required: the posix data directory to copy")
		case !given["storage"]:
			return cli.Usagef("-storage is required: the backend to copy into (aws, gcp or posix)")
		case *workers < 1 || *workers > 1024:
			return cli.Usagef("-workers must be 1 to 1024")
		}
		switch c.storageName() {
		case storage.AWS:
			if c.DBDSN == "" || c.S3Bucket == "" {
				return cli.Usagef("-storage aws needs -db-dsn and -s3-bucket")
			}
		case storage.GCP:
			if c.Spanner == "" || c.GCSBucket == "" {
				return cli.Usagef("-storage gcp needs -spanner and -gcs-bucket")
			}
		case storage.POSIX:
			if !given["data"] {
				return cli.Usagef("-storage posix needs -data, the directory to copy into")
			}
		default:
			return cli.Usagef("-storage %q: want aws, gcp or posix", c.Storage)
		}

		// Tessera logs with klog: its progress only with -v, through slog like
		// the rest; its errors come back as Migrate's.
		tessLog := slog.New(slog.DiscardHandler)
		if *verbose {
			tessLog = slog.Default()
		}
		klog.SetSlogLogger(tessLog)

		res, err := migrate.Run(ctx, migrate.Config{
			From:       *from,
			VettingKey: *vettingKey,
			STICTKey:   *stictKey,
			Target:     c.storage(),
			Workers:    *workers,
			Logger:     slog.Default(),
		})
		if err != nil {
			return err
		}
		for _, l := range res.Logs {
			if l.Copied {
				fmt.Fprintf(stdout, "%s log %s: migrated and verified, size %d, root %s\n", l.Name, l.Origin, l.Size, hex.EncodeToString(l.Root))
			} else {
				fmt.Fprintf(stdout, "%s log %s: bound (it has no entries yet)\n", l.Name, l.Origin)
			}
		}
		fmt.Fprintf(stdout, "state: %s; %s; %s; %d STI-CT issuers\n", joinOr(res.Bindings, "no bindings"),
			countOr(res.Agents, "agents", "no agent registry"), countOr(res.ReceiptKeys, "receipt keys", "no receipt key history"), res.Issuers)
		slog.Info("on its first start on " + c.storageName() + " each log's dedup store indexes the whole log; until it has, adds get 503 with Retry-After")
		return nil
	}
}

func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}

func countOr(n int, what, none string) string {
	if n < 0 {
		return none
	}
	return fmt.Sprintf("%d %s", n, what)
}
