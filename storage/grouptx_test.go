package storage

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	"github.com/vesperlog/vesperlog/storage/storagetest"
)

// TestGroupTx: many writers share transactions, each gets its own result,
// a failing statement fails only its caller, and nothing runs after Close.
func TestGroupTx(t *testing.T) {
	a := storagetest.NewAWS(t)
	db, err := sql.Open("mysql", a.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE G (k INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	g := newGroupTx(db)
	const n = 300
	var wg sync.WaitGroup
	results := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "INSERT IGNORE INTO G (k) VALUES (?)"
			if i == 7 {
				q = "INSERT INTO G (nope) VALUES (?)" // fails alone
			}
			results[i], errs[i] = g.exec(ctx, q, i%(n/2)) // each key twice
		}()
	}
	wg.Wait()
	inserted := map[int]int64{}
	for i := range n {
		switch {
		case i == 7:
			if errs[i] == nil {
				t.Error("a bad statement succeeded")
			}
		case errs[i] != nil:
			t.Errorf("statement %d: %v", i, errs[i])
		default:
			inserted[i%(n/2)] += results[i]
		}
	}
	for k, c := range inserted {
		if c != 1 {
			t.Errorf("key %d: inserted %d times by the writers' own count", k, c)
		}
	}
	var rows int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM G").Scan(&rows); err != nil || rows != n/2 {
		t.Fatalf("table has %d rows, %v; want %d", rows, err, n/2)
	}
	g.Close()
	if _, err := g.exec(ctx, "INSERT INTO G (k) VALUES (1000)"); !errors.Is(err, errGroupClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
