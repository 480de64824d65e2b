package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/storage"
)

// TestAWSBatchDBConnections: one add-batch of 300 statements (the batch
// limit is 1,000) to one front end on aws gets a receipt for every
// statement, while the front end holds fewer connections to MariaDB than
// half its max_connections, so that two front ends fit.
//
// Each entry of a batch is added on its own goroutine, and each add queries
// the database before Tessera batches anything (the catch-up gate until it
// has once succeeded, the dedup claim, the antispam probe). Until commit
// c4f28b7 (storage/aws: bound each front end's database connections) those
// pools were unbounded: one such batch opened about a connection per
// statement, MariaDB (151 by default) refused the rest, and entries failed
// with 500 ("claiming entry: Error 1040: Too many connections") or 503
// ("dedup store is catching up with the log after a restart", on a fresh
// log).
func TestAWSBatchDBConnections(t *testing.T) {
	t.Parallel()
	be := newBackend(t, storage.AWS)
	server, cli := binaries(t)
	dir := t.TempDir()
	srv := be.start(t, server, dir)
	va := newAgentKey(t, cli, dir, "va")
	be.addAgent(t, server, cli, dir, "-name", "va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "va")

	cfg, err := mysql.ParseDSN(be.aws.DSN)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", be.aws.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var name string
	var maxConns int
	if err := db.QueryRowContext(ctx, "SHOW VARIABLES LIKE 'max_connections'").Scan(&name, &maxConns); err != nil {
		t.Fatal(err)
	}
	// The front end's connections: those to the backend's databases,
	// sampled; and the server's counters of connections opened and
	// refused for max_connections (global, but a batch takes a second).
	conns := func() (int, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE (DB = ? OR DB LIKE ?) AND ID <> CONNECTION_ID()`,
			cfg.DBName, strings.ReplaceAll(cfg.DBName, "_", `\_`)+`\_%`).Scan(&n)
		return n, err
	}
	status := func(name string) int {
		var n string
		var v int
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&n, &v); err != nil {
			t.Fatalf("SHOW GLOBAL STATUS LIKE '%s': %v", name, err)
		}
		return v
	}
	idle, err := conns()
	if err != nil {
		t.Fatal(err)
	}

	const n = 300
	var req vetting.BatchRequest
	for i := range n {
		jws, _ := va.statement(fmt.Sprintf("batch statement %d", i))
		req.Statements = append(req.Statements, jws)
	}
	body, _ := json.Marshal(req)

	opened, refused := status("Connections"), status("Connection_errors_max_connections")
	done := make(chan struct{})
	var peak int
	var pollErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := conns()
			if err != nil {
				pollErr = err
				return
			}
			peak = max(peak, c)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	resp, err := loadClient.Post(srv.url+"/vetting/v1/add-batch", "application/json", strings.NewReader(string(body)))
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	opened, refused = status("Connections")-opened, status("Connection_errors_max_connections")-refused
	if pollErr != nil {
		t.Logf("counting connections: %v", pollErr)
	}
	evidence := fmt.Sprintf("the front end had %d connections to its databases idle, %d sampled at the peak of one %d-statement batch; "+
		"during the batch MariaDB (max_connections %d) opened %d connections and refused %d for max_connections", idle, peak, n, maxConns, opened, refused)
	t.Log(evidence)

	var res vetting.BatchResponse
	if err := json.Unmarshal(out, &res); err != nil || len(res.Entries) != n {
		t.Fatalf("add-batch: %d %.300s", resp.StatusCode, out)
	}
	failed := 0
	var first string
	for _, e := range res.Entries {
		if e.Problem != nil {
			if failed == 0 {
				first = fmt.Sprintf("%s (%d) %s", e.Problem.Title, e.Problem.Status, e.Problem.Detail)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d statements of one batch failed, the first with %s; %s", failed, n, first, evidence)
	}
	if peak > maxConns/2 {
		t.Errorf("one front end held %d connections during one batch: two cannot share a server allowing %d; %s", peak, maxConns, evidence)
	}
}
