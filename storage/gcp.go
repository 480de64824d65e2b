package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	gcs "cloud.google.com/go/storage"
	"github.com/transparency-dev/tessera"
	tessgcp "github.com/transparency-dev/tessera/storage/gcp"
	gcpantispam "github.com/transparency-dev/tessera/storage/gcp/antispam"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

// gcpBackend is Tessera's GCP driver on Spanner and GCS. The operator
// creates the Spanner databases D-<log> (and D-<log>-<index>); Tessera
// creates their tables. Credentials are Application Default Credentials.
//
// It cannot run on this project's CI (no Spanner or GCS here): it is
// compiled and documented, not tested. Dedup across front ends is
// Tessera's antispam alone (best effort): there are no Claims.
type gcpBackend struct {
	c   Config
	gcs *gcs.Client
}

// spannerDB is a Spanner database resource name.
var spannerDB = regexp.MustCompile(`^projects/[^/]+/instances/[^/]+/databases/[a-z][a-z0-9_-]{0,12}$`)

func openGCP(ctx context.Context, c Config) (*gcpBackend, error) {
	switch {
	case c.Spanner == "":
		return nil, errMissing(GCP, "a Spanner database (-spanner projects/P/instances/I/databases/D)")
	case !spannerDB.MatchString(c.Spanner):
		return nil, fmt.Errorf("-spanner %q is not projects/P/instances/I/databases/D with D at most 13 characters", c.Spanner)
	case c.Bucket == "":
		return nil, errMissing(GCP, "a GCS bucket (-gcs-bucket)")
	}
	client, err := gcs.NewClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("GCS client: %w", err)
	}
	return &gcpBackend{c: c, gcs: client}, nil
}

func (b *gcpBackend) Name() string { return GCP }

func (b *gcpBackend) Close() error { return b.gcs.Close() }

func (b *gcpBackend) Log(ctx context.Context, name string) (*Stores, error) {
	if err := checkName("log", name); err != nil {
		return nil, err
	}
	db := b.c.Spanner + "-" + name
	d, err := tessgcp.New(ctx, tessgcp.Config{GCSClient: b.gcs, Bucket: b.c.Bucket, BucketPrefix: name, Spanner: db, HTTPClient: b.c.WitnessClient})
	if err != nil {
		return nil, fmt.Errorf("opening gcp log %s: %w", name, err)
	}
	as, err := gcpantispam.NewAntispam(ctx, db, gcpantispam.AntispamOpts{})
	if err != nil {
		return nil, fmt.Errorf("opening antispam store of %s in %s: %w", name, db, err)
	}
	return &Stores{Driver: d, Antispam: as}, nil
}

func (b *gcpBackend) Index(ctx context.Context, name, index string) (tessera.Antispam, error) {
	if err := errors.Join(checkName("log", name), checkName("index", index)); err != nil {
		return nil, err
	}
	db := b.c.Spanner + "-" + name + "-" + index
	as, err := gcpantispam.NewAntispam(ctx, db, gcpantispam.AntispamOpts{})
	if err != nil {
		return nil, fmt.Errorf("opening %s index of %s in %s: %w", index, name, db, err)
	}
	return as, nil
}

func (b *gcpBackend) Objects(name string) Objects {
	return gcsObjects{bucket: b.gcs.Bucket(b.c.Bucket), prefix: name + "/"}
}

// State keeps each document as an object under state/, swapped with
// generation preconditions.
func (b *gcpBackend) State() State {
	return gcsState{gcsObjects{bucket: b.gcs.Bucket(b.c.Bucket), prefix: "state/"}}
}

type gcsObjects struct {
	bucket *gcs.BucketHandle
	prefix string
}

func (o gcsObjects) Put(ctx context.Context, p string, data []byte, contentType string) error {
	return o.write(ctx, o.bucket.Object(o.prefix+p), data, contentType)
}

func (o gcsObjects) write(ctx context.Context, obj *gcs.ObjectHandle, data []byte, contentType string) error {
	w := obj.NewWriter(ctx)
	w.ContentType = contentType
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("storing object %s: %w", obj.ObjectName(), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("storing object %s: %w", obj.ObjectName(), err)
	}
	return nil
}

func (o gcsObjects) Get(ctx context.Context, p string) ([]byte, error) {
	b, _, err := o.read(ctx, p)
	return b, err
}

// read returns an object and its generation.
func (o gcsObjects) read(ctx context.Context, p string) ([]byte, int64, error) {
	r, err := o.bucket.Object(o.prefix + p).NewReader(ctx)
	if errors.Is(err, gcs.ErrObjectNotExist) {
		return nil, 0, fmt.Errorf("object %s: %w", o.prefix+p, ErrNotExist)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading object %s: %w", o.prefix+p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("reading object %s: %w", o.prefix+p, err)
	}
	return b, r.Attrs.Generation, nil
}

type gcsState struct{ o gcsObjects }

func (s gcsState) Get(ctx context.Context, name string) ([]byte, error) { return s.o.Get(ctx, name) }

func (s gcsState) Put(ctx context.Context, name string, value []byte) error {
	return s.o.Put(ctx, name, value, "application/json")
}

func (s gcsState) Create(ctx context.Context, name string, value []byte) (bool, error) {
	return s.Swap(ctx, name, nil, value)
}

func (s gcsState) Swap(ctx context.Context, name string, old, value []byte) (bool, error) {
	obj := s.o.bucket.Object(s.o.prefix + name)
	if old == nil {
		obj = obj.If(gcs.Conditions{DoesNotExist: true})
	} else {
		gen, err := s.holds(ctx, name, old)
		if gen == 0 || err != nil {
			return false, err
		}
		obj = obj.If(gcs.Conditions{GenerationMatch: gen})
	}
	err := s.o.write(ctx, obj, value, "application/json")
	if isPreconditionFailed(err) {
		return false, nil
	}
	return err == nil, err
}

// holds returns the generation of the named document if it holds old,
// else 0 (GCS generations are positive).
func (s gcsState) holds(ctx context.Context, name string, old []byte) (int64, error) {
	cur, gen, err := s.o.read(ctx, name)
	if errors.Is(err, ErrNotExist) {
		return 0, nil
	}
	if err != nil || string(cur) != string(old) {
		return 0, err
	}
	return gen, nil
}

func (s gcsState) Delete(ctx context.Context, name string, old []byte) (bool, error) {
	gen, err := s.holds(ctx, name, old)
	if gen == 0 || err != nil {
		return false, err
	}
	err = s.o.bucket.Object(s.o.prefix + name).If(gcs.Conditions{GenerationMatch: gen}).Delete(ctx)
	if isPreconditionFailed(err) || errors.Is(err, gcs.ErrObjectNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deleting object %s: %w", s.o.prefix+name, err)
	}
	return true, nil
}

func (s gcsState) List(ctx context.Context, prefix, after string, n int) ([]string, error) {
	q := &gcs.Query{Prefix: s.o.prefix + prefix}
	if after != "" {
		// StartOffset is inclusive; the smallest name after after is after+"\x00".
		q.StartOffset = s.o.prefix + after + "\x00"
	}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return nil, err
	}
	it := s.o.bucket.Objects(ctx, q)
	var names []string
	for len(names) < n {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing objects %s: %w", q.Prefix, err)
		}
		names = append(names, strings.TrimPrefix(a.Name, s.o.prefix))
	}
	return names, nil
}

func isPreconditionFailed(err error) bool {
	var e interface{ HTTPCode() int }
	if errors.As(err, &e) {
		return e.HTTPCode() == 412
	}
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == 412
}
