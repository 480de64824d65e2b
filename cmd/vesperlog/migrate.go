package main

import (
	"context"
	"errors"
	"io"
)

// runMigrate copies a posix data directory's logs into another backend.
func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("not yet")
}
