package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"

	"github.com/transparency-dev/tessera"
)

// Backend names.
const (
	POSIX = "posix"
	AWS   = "aws"
	GCP   = "gcp"
)

// ErrNotExist is returned by State.Get and Objects.Get for a missing key.
var ErrNotExist = fs.ErrNotExist

// Config selects and locates a backend. Only the fields of the chosen
// backend are read.
type Config struct {
	Backend string // POSIX, AWS or GCP; empty means POSIX

	// posix
	Dir string // the data directory

	// aws
	DSN        string // MySQL DSN naming a database, e.g. vesper:pw@tcp(127.0.0.1:3306)/vesper
	Bucket     string // S3 bucket (aws) or GCS bucket (gcp)
	S3Endpoint string // custom S3 endpoint URL (any S3-compatible server); empty means AWS's
	S3Region   string // empty means the SDK's (AWS_REGION), else us-east-1

	// gcp
	Spanner string // projects/P/instances/I/databases/D

	// WitnessClient is the client the logs' drivers ask witnesses with;
	// nil means http.DefaultClient.
	WitnessClient *http.Client
}

// Stores is what one log is stored in.
type Stores struct {
	Driver   tessera.Driver
	Antispam tessera.Antispam
	// Claims is nil where one process owns the log (posix): its in-memory
	// dedup is exact there.
	Claims Claims
}

// Claims makes deduplication exact across the processes that share a
// backend: an identity is claimed in the database before its entry is
// added, so a second front end waits for the first's index instead of
// adding the entry again. Antispam alone is best effort (its follower
// lags the log).
type Claims interface {
	// Claim returns the index of the entry with identity id if one was
	// claimed and logged; otherwise it claims id for the caller
	// (logged false), who must then Settle or Release it. It waits while
	// another process holds a fresh claim.
	Claim(ctx context.Context, id []byte) (idx uint64, logged bool, err error)
	// Settle records the index the claimed entry was logged at.
	Settle(ctx context.Context, id []byte, idx uint64) error
	// Release gives up an unsettled claim (the add failed).
	Release(ctx context.Context, id []byte) error
	// Forget drops settled claims below index n, which the antispam
	// store has indexed, keeping the table small.
	Forget(ctx context.Context, n uint64) error
}

// State stores small documents that are not Tessera's, by name. A name is
// a file name, or one directory and a file name ("idempotency/<hex>"),
// neither starting with '.'.
type State interface {
	// Get returns the named document, or an error wrapping ErrNotExist.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put replaces the named document atomically.
	Put(ctx context.Context, name string, value []byte) error
	// Create stores the document unless one exists; it reports whether
	// it did. Of processes racing to create, exactly one wins.
	Create(ctx context.Context, name string, value []byte) (bool, error)
	// Swap replaces the document if it still equals old (nil: absent),
	// and reports whether it did.
	Swap(ctx context.Context, name string, old, value []byte) (bool, error)
	// Delete removes the document if it still equals old, and reports
	// whether it did: like Swap, a writer that lost a race cannot remove
	// what the winner wrote.
	Delete(ctx context.Context, name string, old []byte) (bool, error)
	// List returns, in order, up to n names that start with prefix and
	// sort after after ("" for the first page): a sweep pages through
	// many documents without holding all their names.
	List(ctx context.Context, prefix, after string, n int) ([]string, error)
}

// Versioner is a State that tells cheaply whether a document changed:
// a stat where a Get would open and read a file. The posix State is one.
type Versioner interface {
	// Version returns a value that differs whenever the named document
	// was replaced or written since an earlier call, or an error wrapping
	// ErrNotExist.
	Version(ctx context.Context, name string) (string, error)
}

// Objects stores immutable objects of one log beside its tiles, by path
// relative to the log's root (issuer/<hex>), where a static-ct-api
// client expects them.
type Objects interface {
	// Put stores an object; storing an existing path again is harmless.
	Put(ctx context.Context, path string, data []byte, contentType string) error
	// Get returns the object, or an error wrapping ErrNotExist.
	Get(ctx context.Context, path string) ([]byte, error)
}

// Backend is an opened backend. Its methods open the stores of named
// logs; Close releases the backend itself.
type Backend interface {
	// Name is the backend's name (POSIX, AWS, GCP).
	Name() string
	// Log opens (creating if need be) the stores of the named log.
	Log(ctx context.Context, name string) (*Stores, error)
	// Index opens a lookup index of the named log (for log.NewIndex),
	// stored as an antispam store, which has the same shape.
	Index(ctx context.Context, name, index string) (tessera.Antispam, error)
	// Objects returns the named log's object store.
	Objects(name string) Objects
	// State returns the backend's state store.
	State() State
	// Close releases the backend (posix: its directory lock).
	Close() error
}

// logName is what a log or index name may be: it becomes part of
// database, directory and object names.
var logName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

func checkName(kind, name string) error {
	if !logName.MatchString(name) {
		return fmt.Errorf("storage: %s name %q is not 1-16 lowercase letters and digits", kind, name)
	}
	return nil
}

// Open opens the backend c selects.
func Open(ctx context.Context, c Config) (Backend, error) {
	switch c.Backend {
	case "", POSIX:
		return openPOSIX(c)
	case AWS:
		return openAWS(ctx, c)
	case GCP:
		return openGCP(ctx, c)
	}
	return nil, fmt.Errorf("storage backend %q: want %s, %s or %s", c.Backend, POSIX, AWS, GCP)
}

// errMissing names a missing setting of a backend.
func errMissing(backend, flag string) error {
	return errors.New("storage " + backend + " needs " + flag)
}
