package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	tessaws "github.com/transparency-dev/tessera/storage/aws"
	awsantispam "github.com/transparency-dev/tessera/storage/aws/antispam"
)

// Connection bounds per front end, so that a burst (a batch of 1,000
// statements adds 1,000 entries at once) queues in the pools instead of
// exhausting the database's connections (MariaDB allows 151 by default).
// A front end running both logs holds at most
// 2×(driverConns+antispamConns+claimsConns) + indexConns + stateConns = 46.
const (
	driverConns   = 8 // Tessera's sequencer and integrator
	antispamConns = 4 // Tessera's antispam lookups and follower
	claimsConns   = 8 // VesperClaim: one query or two per new entry
	indexConns    = 4 // a lookup index (the STI-CT leaf hashes)
	stateConns    = 2 // VesperState: a read a second per document
)

// awsBackend is Tessera's AWS driver on a MySQL-compatible database and an
// S3-compatible bucket. It holds one pool on the base database (state)
// and one per log (claims); Close closes them.
type awsBackend struct {
	c      Config
	dsn    *mysql.Config // the base database's DSN
	sdk    aws.Config
	s3opts func(*s3.Options)
	s3     *s3.Client
	db     *sql.DB // the base database: VesperState

	mu     sync.Mutex // guards pools and groups
	pools  []*sql.DB  // the claims pools, closed by Close
	groups []*groupTx // their group committers, stopped by Close first
}

func openAWS(ctx context.Context, c Config) (*awsBackend, error) {
	switch {
	case c.DSN == "":
		return nil, errMissing(AWS, "a MySQL DSN (-db-dsn)")
	case c.Bucket == "":
		return nil, errMissing(AWS, "an S3 bucket (-s3-bucket)")
	}
	dsn, err := mysql.ParseDSN(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("-db-dsn: %w", err)
	}
	if dsn.DBName == "" || !validDBName(dsn.DBName) {
		return nil, fmt.Errorf("-db-dsn must name a database of letters, digits and underscores (…/vesper), not %q", dsn.DBName)
	}
	var opts []func(*awsconfig.LoadOptions) error
	if c.S3Endpoint != "" {
		// Off AWS there is no instance metadata service: without this,
		// missing credentials send requests to the link-local IMDS address.
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	sdk, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if c.S3Region != "" {
		sdk.Region = c.S3Region
	} else if sdk.Region == "" {
		sdk.Region = "us-east-1"
	}
	s3opts := func(o *s3.Options) {
		if c.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(c.S3Endpoint)
			// Most S3-compatible servers have no per-bucket host names.
			o.UsePathStyle = true
		}
	}
	b := &awsBackend{c: c, dsn: dsn, sdk: sdk, s3opts: s3opts, s3: s3.NewFromConfig(sdk, s3opts)}
	if err := b.ensureBucket(ctx); err != nil {
		return nil, err
	}
	if err := b.createDatabase(ctx, dsn.DBName); err != nil {
		return nil, err
	}
	if b.db, err = sql.Open("mysql", c.DSN); err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	b.db.SetMaxOpenConns(stateConns)
	if _, err := b.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS VesperState (
		name VARCHAR(190) NOT NULL PRIMARY KEY,
		value LONGBLOB NOT NULL)`); err != nil {
		b.db.Close()
		return nil, fmt.Errorf("creating state table: %w", err)
	}
	return b, nil
}

// ensureBucket creates the bucket if it does not exist, so that a first
// start needs no S3 tool; an existing bucket is used as it is.
func (b *awsBackend) ensureBucket(ctx context.Context) error {
	_, err := b.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.c.Bucket)})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		_, err = b.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.c.Bucket)})
		if err == nil {
			slog.Info("created S3 bucket", "bucket", b.c.Bucket)
		}
	}
	if err != nil {
		return fmt.Errorf("S3 bucket %q (endpoint %s, credentials from the AWS SDK's environment: AWS_ACCESS_KEY_ID, AWS_PROFILE, ...): %w", b.c.Bucket, endpointName(b.c.S3Endpoint), err)
	}
	return nil
}

func endpointName(e string) string {
	if e == "" {
		return "AWS"
	}
	return e
}

func validDBName(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 40
}

// dsnFor is the base DSN with another database.
func (b *awsBackend) dsnFor(db string) string {
	c := b.dsn.Clone()
	c.DBName = db
	return c.FormatDSN()
}

// createDatabase creates db if need be, connecting without a database.
func (b *awsBackend) createDatabase(ctx context.Context, db string) error {
	conn, err := sql.Open("mysql", b.dsnFor(""))
	if err != nil {
		return fmt.Errorf("opening database server: %w", err)
	}
	defer conn.Close()
	// db passed validDBName or is built from it and a log name.
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"`"); err != nil {
		return fmt.Errorf("creating database %s (the DSN's user needs CREATE on %s_*): %w", db, b.dsn.DBName, err)
	}
	return nil
}

func (b *awsBackend) Name() string { return AWS }

func (b *awsBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.groups {
		g.Close()
	}
	b.groups = nil
	err := b.db.Close()
	for _, p := range b.pools {
		err = errors.Join(err, p.Close())
	}
	b.pools = nil
	return err
}

func (b *awsBackend) Log(ctx context.Context, name string) (*Stores, error) {
	if err := checkName("log", name); err != nil {
		return nil, err
	}
	db := b.dsn.DBName + "_" + name
	if err := b.createDatabase(ctx, db); err != nil {
		return nil, err
	}
	d, err := tessaws.New(ctx, tessaws.Config{
		SDKConfig:    &b.sdk,
		S3Options:    b.s3opts,
		Bucket:       b.c.Bucket,
		BucketPrefix: name,
		DSN:          b.dsnFor(db),
		MaxOpenConns: driverConns,
		MaxIdleConns: driverConns,
		HTTPClient:   b.c.WitnessClient,
	})
	if err != nil {
		return nil, fmt.Errorf("opening aws log %s: %w", name, err)
	}
	as, err := awsantispam.NewAntispam(ctx, b.dsnFor(db), awsantispam.AntispamOpts{MaxOpenConns: antispamConns, MaxIdleConns: antispamConns})
	if err != nil {
		return nil, fmt.Errorf("opening antispam store of %s in database %s: %w", name, db, err)
	}
	claims, err := b.openClaims(ctx, db)
	if err != nil {
		return nil, err
	}
	return &Stores{Driver: d, Antispam: as, Claims: claims}, nil
}

func (b *awsBackend) Index(ctx context.Context, name, index string) (tessera.Antispam, error) {
	if err := errors.Join(checkName("log", name), checkName("index", index)); err != nil {
		return nil, err
	}
	db := b.dsn.DBName + "_" + name + "_" + index
	if err := b.createDatabase(ctx, db); err != nil {
		return nil, err
	}
	as, err := awsantispam.NewAntispam(ctx, b.dsnFor(db), awsantispam.AntispamOpts{MaxOpenConns: indexConns, MaxIdleConns: indexConns})
	if err != nil {
		return nil, fmt.Errorf("opening %s index of %s in database %s: %w", index, name, db, err)
	}
	return as, nil
}

func (b *awsBackend) Objects(name string) Objects {
	return s3Objects{client: b.s3, bucket: b.c.Bucket, prefix: name + "/"}
}

func (b *awsBackend) State() State { return sqlState{db: b.db} }

// s3Objects are objects in the bucket under the log's prefix, so that the
// bucket alone serves the static-ct-api layout.
type s3Objects struct {
	client *s3.Client
	bucket string
	prefix string
}

func (o s3Objects) Put(ctx context.Context, p string, data []byte, contentType string) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(o.bucket),
		Key:    aws.String(o.prefix + p),
		Body:   bytes.NewReader(data),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := o.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("storing object %s: %w", o.prefix+p, err)
	}
	return nil
}

func (o s3Objects) Get(ctx context.Context, p string) ([]byte, error) {
	out, err := o.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.prefix + p)})
	if err != nil {
		var nsk *s3types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("object %s: %w", o.prefix+p, ErrNotExist)
		}
		return nil, fmt.Errorf("reading object %s: %w", o.prefix+p, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, fmt.Errorf("reading object %s: %w", o.prefix+p, err)
	}
	return buf.Bytes(), nil
}

// sqlState is the VesperState table of the base database.
type sqlState struct{ db *sql.DB }

func (s sqlState) Get(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, "SELECT value FROM VesperState WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("state %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", name, err)
	}
	return v, nil
}

func (s sqlState) Put(ctx context.Context, name string, value []byte) error {
	if _, err := s.db.ExecContext(ctx,
		"INSERT INTO VesperState (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)",
		name, value); err != nil {
		return fmt.Errorf("writing state %s: %w", name, err)
	}
	return nil
}

func (s sqlState) Create(ctx context.Context, name string, value []byte) (bool, error) {
	r, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO VesperState (name, value) VALUES (?, ?)", name, value)
	if err != nil {
		return false, fmt.Errorf("creating state %s: %w", name, err)
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

func (s sqlState) Swap(ctx context.Context, name string, old, value []byte) (bool, error) {
	if old == nil {
		return s.Create(ctx, name, value)
	}
	if bytes.Equal(old, value) {
		// MySQL counts an UPDATE that changes nothing as no row affected.
		cur, err := s.Get(ctx, name)
		if errors.Is(err, ErrNotExist) {
			return false, nil
		}
		return err == nil && bytes.Equal(cur, old), err
	}
	r, err := s.db.ExecContext(ctx, "UPDATE VesperState SET value = ? WHERE name = ? AND value = ?", value, name, old)
	if err != nil {
		return false, fmt.Errorf("swapping state %s: %w", name, err)
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

func (s sqlState) Delete(ctx context.Context, name string, old []byte) (bool, error) {
	r, err := s.db.ExecContext(ctx, "DELETE FROM VesperState WHERE name = ? AND value = ?", name, old)
	if err != nil {
		return false, fmt.Errorf("deleting state %s: %w", name, err)
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

func (s sqlState) List(ctx context.Context, prefix, after string, n int) ([]string, error) {
	like := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"
	rows, err := s.db.QueryContext(ctx, "SELECT name FROM VesperState WHERE name LIKE ? AND name > ? ORDER BY name LIMIT ?", like, after, n)
	if err != nil {
		return nil, fmt.Errorf("listing state %s: %w", prefix, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("listing state %s: %w", prefix, err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing state %s: %w", prefix, err)
	}
	return names, nil
}

// claimStale is how long a claim may stay unsettled before another
// process takes it over: its holder died between claiming and logging.
// A holder settles as soon as its entry is sequenced, well within this.
const claimStale = 15 * time.Second

// claimPoll is how often a process waiting on another's claim looks again.
const claimPoll = 20 * time.Millisecond

// sqlClaims is the VesperClaim table of a log's database. A claim row
// carries its holder's token, so that a holder whose claim went stale and
// was taken over cannot release or settle the new holder's.
type sqlClaims struct {
	db    *sql.DB
	group *groupTx      // the claims' and settlements' writes, committed together
	stale time.Duration // claimStale; shorter in tests

	mu   sync.Mutex        // guards held
	held map[string]uint64 // identity → the token of this process's claim on it
}

func (b *awsBackend) openClaims(ctx context.Context, db string) (*sqlClaims, error) {
	pool, err := sql.Open("mysql", b.dsnFor(db))
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", db, err)
	}
	pool.SetMaxOpenConns(claimsConns)
	pool.SetMaxIdleConns(claimsConns)
	if _, err := pool.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS VesperClaim (
		h VARBINARY(64) NOT NULL PRIMARY KEY,
		idx BIGINT UNSIGNED NULL,
		claimed BIGINT NOT NULL,
		token BIGINT UNSIGNED NOT NULL,
		KEY (idx))`); err != nil {
		pool.Close()
		return nil, fmt.Errorf("creating claims table in %s: %w", db, err)
	}
	b.mu.Lock()
	b.pools = append(b.pools, pool)
	b.mu.Unlock()
	c := &sqlClaims{db: pool, group: newGroupTx(pool), stale: claimStale, held: map[string]uint64{}}
	b.mu.Lock()
	b.groups = append(b.groups, c.group)
	b.mu.Unlock()
	return c, nil
}

func (c *sqlClaims) Claim(ctx context.Context, id []byte) (uint64, bool, error) {
	t := time.NewTicker(claimPoll)
	defer t.Stop()
	token := rand.Uint64()
	for {
		now := time.Now().UnixMilli()
		n, err := c.group.exec(ctx, "INSERT IGNORE INTO VesperClaim (h, idx, claimed, token) VALUES (?, NULL, ?, ?)", id, now, token)
		if err != nil {
			return 0, false, fmt.Errorf("claiming entry: %w", err)
		}
		if n == 1 {
			return 0, false, c.hold(id, token, nil)
		}
		var idx sql.NullInt64
		var claimed int64
		err = c.db.QueryRowContext(ctx, "SELECT idx, claimed FROM VesperClaim WHERE h = ?", id).Scan(&idx, &claimed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // released meanwhile: claim again
		case err != nil:
			return 0, false, fmt.Errorf("reading claim: %w", err)
		case idx.Valid:
			return uint64(idx.Int64), true, nil
		case now-claimed > c.stale.Milliseconds():
			r, err := c.db.ExecContext(ctx, "UPDATE VesperClaim SET claimed = ?, token = ? WHERE h = ? AND idx IS NULL AND claimed = ?", now, token, id, claimed)
			if err != nil {
				return 0, false, fmt.Errorf("taking over a stale claim: %w", err)
			}
			if n, err := r.RowsAffected(); err != nil || n == 1 {
				return 0, false, c.hold(id, token, err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return 0, false, fmt.Errorf("waiting for another front end's claim: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// hold records this process's claim on id, unless claiming failed.
func (c *sqlClaims) hold(id []byte, token uint64, err error) error {
	if err != nil {
		return fmt.Errorf("claiming entry: %w", err)
	}
	c.mu.Lock()
	c.held[string(id)] = token
	c.mu.Unlock()
	return nil
}

// drop forgets this process's claim on id and returns its token.
func (c *sqlClaims) drop(id []byte) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	token, ok := c.held[string(id)]
	delete(c.held, string(id))
	return token, ok
}

func (c *sqlClaims) Settle(ctx context.Context, id []byte, idx uint64) error {
	token, ok := c.drop(id)
	if !ok {
		// Found in the antispam store without a claim of ours: record
		// the index all the same, unless another claim settled it.
		_, err := c.db.ExecContext(ctx, "UPDATE VesperClaim SET idx = ? WHERE h = ? AND idx IS NULL", idx, id)
		return err
	}
	if _, err := c.group.exec(ctx, "UPDATE VesperClaim SET idx = ? WHERE h = ? AND token = ?", idx, id, token); err != nil {
		return fmt.Errorf("settling claim: %w", err)
	}
	return nil
}

func (c *sqlClaims) Release(ctx context.Context, id []byte) error {
	token, ok := c.drop(id)
	if !ok {
		return nil
	}
	if _, err := c.db.ExecContext(ctx, "DELETE FROM VesperClaim WHERE h = ? AND idx IS NULL AND token = ?", id, token); err != nil {
		return fmt.Errorf("releasing claim: %w", err)
	}
	return nil
}

func (c *sqlClaims) Forget(ctx context.Context, n uint64) error {
	if _, err := c.db.ExecContext(ctx, "DELETE FROM VesperClaim WHERE idx < ?", n); err != nil {
		return fmt.Errorf("forgetting claims: %w", err)
	}
	return nil
}
