package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// The end-to-end tests that are about the log's storage run once per
// backend: posix (a data directory) and aws (MariaDB and versitygw, from
// storagetest). A backend says how to start vesperlog on it, how to register
// agents, and how to reach the stored objects a test tampers with.

// backendNames are the backends the end-to-end tests run on.
var backendNames = []string{storage.POSIX, storage.AWS}

// backend is one fresh backend of a test.
type backend struct {
	name string
	// flags locate the backend for vesperlog and its subcommands
	// (vesperlog agents); none for posix, whose -data startServer gives.
	flags []string
	// args go after a test's own server arguments: the flags, and what
	// the backend needs besides (aws: its minimum checkpoint interval,
	// which wins over startServer's 200ms, the later flag winning).
	args []string
	aws  storagetest.AWS // the aws backend's database and bucket
	s3   *s3.Client      // a client of that bucket
}

// forEachBackend runs f as a parallel subtest per backend, each with a
// fresh backend and its own directories. Under CI=true an aws backend that
// cannot be had fails the subtest; elsewhere it skips it (storagetest's
// one-line reason).
func forEachBackend(t *testing.T, f func(t *testing.T, be *backend)) {
	t.Helper()
	awsEnvironment()
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, newBackend(t, name))
		})
	}
}

// newBackend gives t a fresh backend.
func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	switch name {
	case storage.POSIX:
		return &backend{name: name}
	case storage.AWS:
		awsEnvironment()
		a := storagetest.NewAWS(t)
		c, err := storagetest.S3Client(context.Background(), a.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		flags := []string{"-storage", "aws", "-db-dsn", a.DSN, "-s3-bucket", a.Bucket, "-s3-endpoint", a.Endpoint}
		return &backend{name: name, flags: flags, args: append(flags, "-checkpoint-interval", "1s"), aws: a, s3: c}
	}
	t.Fatalf("no backend %q", name)
	return nil
}

var awsEnvOnce sync.Once

// awsEnvironment gives the process, once, the S3 credentials and region
// that storagetest would set with t.Setenv (.ci/services' versitygw), where
// the environment has none: t.Setenv panics in a parallel test, and the
// servers a test starts inherit the environment. .ci/run exports them.
func awsEnvironment() {
	awsEnvOnce.Do(func() {
		if _, ok := os.LookupEnv("AWS_ACCESS_KEY_ID"); !ok {
			os.Setenv("AWS_ACCESS_KEY_ID", "vesper")
			os.Setenv("AWS_SECRET_ACCESS_KEY", "vesper-secret")
		}
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			os.Setenv("AWS_REGION", "us-east-1")
		}
	})
}

// start starts vesperlog in dir on the backend.
func (b *backend) start(t *testing.T, bin, dir string, args ...string) *running {
	t.Helper()
	return startServer(t, bin, dir, b.serverArgs(args...)...)
}

// startSTICT starts vesperlog in dir on the backend, with the STI-CT log.
func (b *backend) startSTICT(t *testing.T, bin, dir string, args ...string) (*running, ctclient) {
	t.Helper()
	return startSTICT(t, bin, dir, b.serverArgs(args...)...)
}

// serverArgs are a test's server arguments followed by the backend's.
func (b *backend) serverArgs(args ...string) []string {
	return append(append([]string(nil), args...), b.args...)
}

// addAgent registers an agent (args as vesper agents add takes them, less
// -agents) where vesperlog on the backend reads the registry: posix's
// data/agents.json in dir, or aws's registry in the database, replaced with
// vesperlog agents put from dir/registry.json, which vesper agents add
// keeps.
func (b *backend) addAgent(t *testing.T, server, cli, dir string, args ...string) {
	t.Helper()
	if b.name == storage.POSIX {
		runVesper(t, cli, dir, 0, append([]string{"agents", "add", "-agents", "data/agents.json"}, args...)...)
		return
	}
	runVesper(t, cli, dir, 0, append([]string{"agents", "add", "-create", "-agents", "registry.json"}, args...)...)
	out := runVesper(t, server, dir, 0, append(append([]string{"agents", "put"}, b.flags...), "registry.json")...)
	if !strings.Contains(out, "agent registry replaced") {
		t.Fatalf("vesperlog agents put: %s", out)
	}
}

// waitAgents waits until the server at url lists the named agents: every
// front end reloads the registry within a second (at once on posix).
func waitAgents(t *testing.T, url string, names ...string) {
	t.Helper()
	eventually(t, 10*time.Second, "agents "+strings.Join(names, ", ")+" at "+url, func() (bool, string) {
		resp, err := http.Get(url + "/vetting/v1/agents")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, n := range names {
			if !bytes.Contains(body, []byte(`"name":"`+n+`"`)) {
				return false, string(body)
			}
		}
		return true, ""
	})
}

// readObject reads a stored object of a log, named by its path below the
// backend's root ("vetting/checkpoint", "vetting/tile/0/000"): posix's file
// under dir/data, or aws's object in the bucket.
func (b *backend) readObject(t *testing.T, dir, key string) []byte {
	t.Helper()
	if b.name == storage.POSIX {
		data, err := os.ReadFile(filepath.Join(dir, "data", filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	out, err := b.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.aws.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("reading s3://%s/%s: %v", b.aws.Bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeObject replaces a stored object of a log (see readObject), as an
// operator with write access to the storage could.
func (b *backend) writeObject(t *testing.T, dir, key string, data []byte) {
	t.Helper()
	if b.name == storage.POSIX {
		if err := os.WriteFile(filepath.Join(dir, "data", filepath.FromSlash(key)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := b.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(b.aws.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatalf("writing s3://%s/%s: %v", b.aws.Bucket, key, err)
	}
}

// logDir returns a directory holding the named log as stored, for tools
// that read a log from files (vesper audit -dir): posix's dir/data/<log>
// itself, or a copy of everything under <log>/ in aws's bucket.
func (b *backend) logDir(t *testing.T, dir, log string) string {
	t.Helper()
	if b.name == storage.POSIX {
		return filepath.Join(dir, "data", log)
	}
	ctx := context.Background()
	root := filepath.Join(dir, "bucket-copy", log)
	p := s3.NewListObjectsV2Paginator(b.s3, &s3.ListObjectsV2Input{Bucket: aws.String(b.aws.Bucket), Prefix: aws.String(log + "/")})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing s3://%s/%s/: %v", b.aws.Bucket, log, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			path := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(key, log+"/")))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.readObject(t, dir, key), 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("s3://%s holds nothing under %s/", b.aws.Bucket, log)
	}
	return root
}
