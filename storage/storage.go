package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	badger "github.com/transparency-dev/tessera/storage/posix/antispam"
)

// Backend names.
const (
	POSIX = "posix"
)

// Config selects and locates a backend.
type Config struct {
	Backend string // "posix"; empty means posix
	Dir     string // posix: the data directory
}

// Stores is what one log is stored in.
type Stores struct {
	Driver   tessera.Driver
	Antispam tessera.Antispam
}

// Open opens (creating if need be) the stores of the log called name.
// The antispam store's background work stops when ctx ends.
func Open(ctx context.Context, c Config, name string) (*Stores, error) {
	switch c.Backend {
	case "", POSIX:
	default:
		return nil, fmt.Errorf("storage backend %q is not available in this build (use %q)", c.Backend, POSIX)
	}
	if c.Dir == "" {
		return nil, fmt.Errorf("storage: posix needs a directory")
	}
	logDir := filepath.Join(c.Dir, name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", logDir, err)
	}
	d, err := posix.New(ctx, posix.Config{Path: logDir})
	if err != nil {
		return nil, fmt.Errorf("opening posix log in %s: %w", logDir, err)
	}
	asDir := filepath.Join(c.Dir, name+"-antispam")
	as, err := badger.NewAntispam(ctx, asDir, badger.AntispamOpts{})
	if err != nil {
		return nil, fmt.Errorf("opening antispam store in %s: %w", asDir, err)
	}
	return &Stores{Driver: d, Antispam: as}, nil
}

// OpenIndex opens (creating if need be) a lookup index of the log called
// name, named index (for log.NewIndex). It is stored like the antispam
// store, which has the same shape.
func OpenIndex(ctx context.Context, c Config, name, index string) (tessera.Antispam, error) {
	if c.Backend != "" && c.Backend != POSIX {
		return nil, fmt.Errorf("storage backend %q is not available in this build (use %q)", c.Backend, POSIX)
	}
	dir := filepath.Join(c.Dir, name+"-"+index)
	as, err := badger.NewAntispam(ctx, dir, badger.AntispamOpts{})
	if err != nil {
		return nil, fmt.Errorf("opening %s index in %s: %w", index, dir, err)
	}
	return as, nil
}
