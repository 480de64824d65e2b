package storagetest

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
)

// TestNewAWS uses the database and bucket NewAWS gives a subtest, and checks
// that they are gone once the subtest has ended.
func TestNewAWS(t *testing.T) {
	ctx := t.Context()
	var a AWS
	var db, outsider string
	if !t.Run("use", func(t *testing.T) {
		a = NewAWS(t)
		cfg, err := mysql.ParseDSN(a.DSN)
		if err != nil {
			t.Fatalf("DSN %q: %v", a.DSN, err)
		}
		db = cfg.DBName
		if !strings.HasPrefix(db, "vesper_t") || len(db) != len("vesper_t")+8 {
			t.Errorf("database %q, want vesper_t and 8 hex digits", db)
		}
		if !strings.HasPrefix(a.Bucket, "vesper-t") || len(a.Bucket) != len("vesper-t")+8 {
			t.Errorf("bucket %q, want vesper-t and 8 hex digits", a.Bucket)
		}

		// The bucket: empty, then holding what is put in it.
		c, err := S3Client(ctx, a.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(a.Bucket)})
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		if len(list.Contents) != 0 {
			t.Errorf("fresh bucket holds %d objects", len(list.Contents))
		}
		want := []byte("hello, vesper\n")
		keys := []string{"checkpoint", "tile/0/000", "tile/entries/x001/234"}
		for _, k := range keys {
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(a.Bucket), Key: aws.String(k), Body: bytes.NewReader(want),
			}); err != nil {
				t.Fatalf("PutObject %s: %v", k, err)
			}
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.Bucket), Key: aws.String("tile/0/000")})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("GetObject: %q, %v; want %q", got, err, want)
		}

		// The database: empty, then holding what is put in it.
		sdb, err := sql.Open("mysql", a.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		var tables int
		if err := sdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", db).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("fresh database holds %d tables", tables)
		}
		for _, q := range []string{
			"CREATE TABLE entries (id BIGINT PRIMARY KEY, data BLOB NOT NULL)",
			"INSERT INTO entries VALUES (7, 'seven')",
		} {
			if _, err := sdb.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		var data string
		if err := sdb.QueryRowContext(ctx, "SELECT data FROM entries WHERE id = 7").Scan(&data); err != nil || data != "seven" {
			t.Errorf("SELECT: %q, %v; want seven", data, err)
		}

		// Databases named after it, as the server makes them: the cleanup
		// drops those under db + "_" and leaves the outsider alone.
		outsider = db + "x_other"
		for _, d := range []string{db + "_vetting", db + "_stict_leafhash", outsider} {
			if _, err := sdb.ExecContext(ctx, "CREATE DATABASE "+quoteName(d)); err != nil {
				t.Fatalf("CREATE DATABASE %s: %v", d, err)
			}
		}
		if _, err := sdb.ExecContext(ctx, "CREATE TABLE "+quoteName(db+"_vetting")+".t (x INT)"); err != nil {
			t.Fatal(err)
		}
	}) {
		return
	}
	if a.Bucket == "" {
		t.Skip("the subtest did not get a database and bucket")
	}

	// After the subtest: only the outsider is left, and no bucket.
	setCredentials(t)
	base, err := mysql.ParseDSN(a.DSN)
	if err != nil {
		t.Fatal(err)
	}
	base.DBName = ""
	admin, err := adminDB(base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if outsider != "" {
		defer admin.Exec("DROP DATABASE IF EXISTS " + quoteName(outsider))
	}
	rows, err := admin.QueryContext(ctx, "SHOW DATABASES LIKE '"+strings.ReplaceAll(db, "_", `\_`)+"%'")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		left = append(left, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if outsider != "" && (len(left) != 1 || left[0] != outsider) {
		t.Errorf("after cleanup, databases %q are left; want only %s", left, outsider)
	}

	c, err := S3Client(ctx, a.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(a.Bucket)})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("after cleanup, HeadBucket %s: %v; want NotFound", a.Bucket, err)
	}
}

// TestUnreachable checks that NewAWS skips quickly when a server does not
// answer, and fails instead under CI.
func TestUnreachable(t *testing.T) {
	mysqlDSN := getenv("VESPER_TEST_MYSQL", defaultMySQL)
	s3URL := getenv("VESPER_TEST_S3", defaultS3)
	for _, c := range []struct {
		name, mysql, s3, want string
	}{
		{"mariadb", "vesper:vesper@tcp(127.0.0.1:1)/", s3URL, "MariaDB at 127.0.0.1:1: "},
		// Unless MariaDB is down too, when the message is about it.
		{"s3", mysqlDSN, "http://127.0.0.1:1", "S3 server at http://127.0.0.1:1: "},
	} {
		for _, ci := range []string{"", "true"} {
			t.Setenv("VESPER_TEST_MYSQL", c.mysql)
			t.Setenv("VESPER_TEST_S3", c.s3)
			t.Setenv("CI", ci)
			start := time.Now()
			r := callNewAWS(t)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s, CI=%q: NewAWS took %v to give up", c.name, ci, d)
			}
			wantSkip, wantFatal := ci == "", ci == "true"
			if r.skipped != wantSkip || r.failed != wantFatal {
				t.Errorf("%s, CI=%q: skipped %v, failed %v (%q); want skipped %v, failed %v",
					c.name, ci, r.skipped, r.failed, r.msg, wantSkip, wantFatal)
			}
			if !strings.Contains(r.msg, c.want) && !strings.Contains(r.msg, "MariaDB at ") {
				t.Errorf("%s, CI=%q: message %q, want it to say %q", c.name, ci, r.msg, c.want)
			}
			if strings.Contains(r.msg, "\n") || strings.Contains(r.msg, "vesper:vesper") {
				t.Errorf("%s, CI=%q: message %q, want one line without the password", c.name, ci, r.msg)
			}
			t.Logf("%s, CI=%q: %s", c.name, ci, r.msg)
		}
	}
}

// recordingTB is a testing.TB whose Fatalf and Skipf record their message and
// end the goroutine, as the real ones do, without ending the test.
type recordingTB struct {
	testing.TB
	mu              sync.Mutex
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

type outcome struct {
	skipped, failed bool
	msg             string
}

// callNewAWS calls NewAWS with a recordingTB and reports how it ended.
func callNewAWS(t *testing.T) outcome {
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewAWS(r)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("NewAWS did not return")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return outcome{r.skipped, r.failed, r.msg}
}
