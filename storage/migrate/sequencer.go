package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"cloud.google.com/go/spanner"
	"github.com/go-sql-driver/mysql"
	"google.golang.org/api/iterator"

	"github.com/vesperlog/vesperlog/storage"
)

// Tessera's AWS and GCP drivers keep two counters in their database: the
// integrated tree size (IntCoord.seq) and the next index to assign
// (SeqCoord.next). Tessera's migration (v1.0.4, and its main branch as of
// this writing) advances only the first, so on a migrated log the
// appender would assign index 0 again: on aws next - size underflows and
// every add is pushed back for ever; on gcp new entries would be
// sequenced below the tree and never integrated. advanceSequencer moves
// SeqCoord.next up to the integrated size, once the copy is verified: until
// then the target log accepts nothing, which is as it should be.
//
// It reaches into each driver's database by the names storage gives them
// (aws: database <D>_<log>; gcp: <D>-<log>), and Tessera's table layout.
// It belongs in storage, beside those names; it is here while migration
// is its only user.
func advanceSequencer(ctx context.Context, c storage.Config, log string, size uint64) error {
	switch c.Backend {
	case storage.AWS:
		return advanceMySQL(ctx, c.DSN, log, size)
	case storage.GCP:
		return advanceSpanner(ctx, c.Spanner+"-"+log, size)
	}
	return nil // posix: the tree state is the only counter
}

func advanceMySQL(ctx context.Context, dsn, log string, size uint64) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("-db-dsn: %w", err)
	}
	cfg.DBName += "_" + log
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return fmt.Errorf("opening database %s: %w", cfg.DBName, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database %s: %w", cfg.DBName, err)
	}
	defer tx.Rollback()
	var seq, next uint64
	if err := tx.QueryRowContext(ctx, "SELECT seq FROM IntCoord WHERE id = 0 FOR UPDATE").Scan(&seq); err != nil {
		return fmt.Errorf("reading the integrated size in %s: %w", cfg.DBName, err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT next FROM SeqCoord WHERE id = 0 FOR UPDATE").Scan(&next); err != nil {
		return fmt.Errorf("reading the next index in %s: %w", cfg.DBName, err)
	}
	if seq < size {
		return fmt.Errorf("the target %s log is integrated to %d, not %d", log, seq, size)
	}
	if next >= seq {
		return nil
	}
	var stale int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM Seq WHERE id = 0").Scan(&stale); err != nil {
		return fmt.Errorf("reading sequenced entries in %s: %w", cfg.DBName, err)
	}
	if stale > 0 {
		return fmt.Errorf("the target %s log has %d batches sequenced below its migrated size", log, stale)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE SeqCoord SET next = ? WHERE id = 0", seq); err != nil {
		return fmt.Errorf("advancing the next index in %s: %w", cfg.DBName, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("advancing the next index in %s: %w", cfg.DBName, err)
	}
	return nil
}

// advanceSpanner is advanceMySQL on Spanner. It is compiled, not tested:
// there is no Spanner here.
func advanceSpanner(ctx context.Context, db string, size uint64) error {
	c, err := spanner.NewClient(ctx, db)
	if err != nil {
		return fmt.Errorf("opening %s: %w", db, err)
	}
	defer c.Close()
	_, err = c.ReadWriteTransaction(ctx, func(ctx context.Context, txn *spanner.ReadWriteTransaction) error {
		var seq, next int64
		row, err := txn.ReadRow(ctx, "IntCoord", spanner.Key{0}, []string{"seq"})
		if err == nil {
			err = row.Columns(&seq)
		}
		if err != nil {
			return fmt.Errorf("reading the integrated size: %w", err)
		}
		row, err = txn.ReadRow(ctx, "SeqCoord", spanner.Key{0}, []string{"next"})
		if err == nil {
			err = row.Columns(&next)
		}
		if err != nil {
			return fmt.Errorf("reading the next index: %w", err)
		}
		if uint64(seq) < size {
			return fmt.Errorf("the target log is integrated to %d, not %d", seq, size)
		}
		if next >= seq {
			return nil
		}
		it := txn.Read(ctx, "Seq", spanner.AllKeys(), []string{"seq"})
		defer it.Stop()
		if _, err := it.Next(); !errors.Is(err, iterator.Done) {
			if err == nil {
				err = errors.New("it has entries sequenced below its migrated size")
			}
			return fmt.Errorf("reading sequenced entries: %w", err)
		}
		return txn.BufferWrite([]*spanner.Mutation{spanner.Update("SeqCoord", []string{"id", "next"}, []any{0, seq})})
	})
	if err != nil {
		return fmt.Errorf("advancing the next index in %s: %w", db, err)
	}
	return nil
}
