package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
)

// Defaults: where .ci/services puts the servers, and its fixed test
// credentials.
const (
	defaultMySQL     = "vesper:vesper@tcp(127.0.0.1:3306)/"
	defaultS3        = "http://127.0.0.1:7070"
	defaultAccessKey = "vesper"
	defaultSecretKey = "vesper-secret"
	defaultRegion    = "us-east-1"

	// reachTimeout bounds the check that a server answers, so that a
	// developer without the servers gets a quick skip.
	reachTimeout = 2 * time.Second
	// cleanupTimeout bounds each of the two removals when a test ends.
	cleanupTimeout = time.Minute
)

// AWS is where one test's aws backend lives.
type AWS struct {
	DSN      string // MySQL DSN naming a fresh, empty database, e.g. vesper:vesper@tcp(127.0.0.1:3306)/vesper_t3f9a1c2d
	Bucket   string // a fresh, empty bucket
	Endpoint string // the S3 endpoint URL, e.g. http://127.0.0.1:7070
}

// NewAWS creates a database and a bucket for t and drops them (the database
// and every database whose name starts with its name + "_") when t ends.
// Outside CI it skips t with a one-line reason when a server is unreachable;
// with CI=true set in the environment it fails t instead.
//
// The servers are named by VESPER_TEST_MYSQL and VESPER_TEST_S3 (see the
// package doc). When AWS_ACCESS_KEY_ID is unset, NewAWS sets it and
// AWS_SECRET_ACCESS_KEY for t with t.Setenv, and likewise AWS_REGION when
// neither it nor AWS_DEFAULT_REGION is set. t.Setenv panics in a test that
// called t.Parallel (or has a parallel ancestor), so a parallel test needs
// those variables in the environment already, as .ci/run exports them.
//
// The removals are registered with t.Cleanup when NewAWS runs, so they run
// after the cleanups that t registers later (such as stopping a server that
// uses the database), and are logged, not fatal, when they fail.
func NewAWS(t testing.TB) AWS {
	t.Helper()
	setCredentials(t)
	endpoint := getenv("VESPER_TEST_S3", defaultS3)

	base, err := mysql.ParseDSN(getenv("VESPER_TEST_MYSQL", defaultMySQL))
	if err != nil {
		t.Fatalf("storagetest: VESPER_TEST_MYSQL: %v", err)
	}
	base.DBName = ""

	// Both servers must answer before anything is made on either.
	admin, err := adminDB(base)
	if err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reachTimeout)
	err = admin.PingContext(ctx)
	cancel()
	if err != nil {
		admin.Close()
		unavailable(t, "MariaDB at %s: %v", base.Addr, err)
		return AWS{}
	}
	client, err := S3Client(context.Background(), endpoint)
	if err != nil {
		admin.Close()
		t.Fatalf("storagetest: S3 client: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), reachTimeout)
	_, err = client.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	cancel()
	if err != nil {
		admin.Close()
		unavailable(t, "S3 server at %s: %v", endpoint, err)
		return AWS{}
	}

	suffix := randomHex(t)
	db := "vesper_t" + suffix
	bucket := "vesper-t" + suffix

	ctx, cancel = context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+quoteName(db)); err != nil {
		admin.Close()
		t.Fatalf("storagetest: creating database %s: %v", db, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := dropDatabases(ctx, admin, db); err != nil {
			t.Logf("storagetest: dropping database %s: %v", db, err)
		}
	})

	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("storagetest: creating bucket %s at %s: %v", bucket, endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := deleteBucket(ctx, client, bucket); err != nil {
			t.Logf("storagetest: deleting bucket %s: %v", bucket, err)
		}
	})

	dsn := base.Clone()
	dsn.DBName = db
	return AWS{DSN: dsn.FormatDSN(), Bucket: bucket, Endpoint: endpoint}
}

// S3Client returns a client of the S3 server at endpoint that addresses
// buckets by path, with credentials and region from the environment (as
// config.LoadDefaultConfig finds them), the region being us-east-1 if none is
// set.
func S3Client(ctx context.Context, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}), nil
}

// setCredentials sets, for t, the credentials and region that .ci/services
// gives versitygw, where the environment has none.
func setCredentials(t testing.TB) {
	if _, ok := os.LookupEnv("AWS_ACCESS_KEY_ID"); !ok {
		t.Setenv("AWS_ACCESS_KEY_ID", defaultAccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", defaultSecretKey)
	}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		t.Setenv("AWS_REGION", defaultRegion)
	}
}

// unavailable skips t, or fails it under CI, because a server does not answer.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	if os.Getenv("CI") == "true" {
		t.Fatalf("storagetest: %s (CI=true: .ci/services must have started the servers)", msg)
	}
	t.Skipf("storagetest: %s (start the servers with: sudo bash .ci/services)", msg)
}

// adminDB opens the server connection, with no database selected, that
// creates and drops the test's databases.
func adminDB(base *mysql.Config) (*sql.DB, error) {
	c := base.Clone()
	c.Timeout = reachTimeout
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	// DROP DATABASE waits for the metadata locks of anything the test left
	// open; without this it would wait for a year.
	c.Params["lock_wait_timeout"] = "20"
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("VESPER_TEST_MYSQL: %v", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}

// dropDatabases drops db and every database whose name starts with db + "_".
func dropDatabases(ctx context.Context, admin *sql.DB, db string) error {
	like := strings.ReplaceAll(db, "_", `\_`) + `\_%`
	rows, err := admin.QueryContext(ctx, "SHOW DATABASES LIKE '"+like+"'")
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var errs []string
	for _, n := range append(names, db) {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteName(n)); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// deleteBucket deletes every object in bucket, then the bucket.
func deleteBucket(ctx context.Context, client *s3.Client, bucket string) error {
	var keys []types.ObjectIdentifier
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing objects: %w", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, types.ObjectIdentifier{Key: o.Key})
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000) // DeleteObjects takes at most 1000 keys
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: keys[:n], Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("deleting objects: %w", err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("deleting %d objects, the first %s: %s %s", len(out.Errors),
				aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		keys = keys[n:]
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	return nil
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func randomHex(t testing.TB) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	return hex.EncodeToString(b)
}

// quoteName quotes a database name for MySQL.
func quoteName(n string) string {
	return "`" + strings.ReplaceAll(n, "`", "``") + "`"
}
