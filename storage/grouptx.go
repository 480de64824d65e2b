package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// groupSize bounds the statements one transaction of a groupTx commits.
const groupSize = 128

// groupWorkers is how many transactions a groupTx runs at once.
const groupWorkers = 4

// groupTimeout bounds one shared transaction.
const groupTimeout = 30 * time.Second

// errGroupClosed answers statements sent after Close.
var errGroupClosed = errors.New("storage: closed")

// groupTx runs small single-row writes from many goroutines in shared
// transactions: each write alone would be its own commit, and so wait for
// its own log flush, where a transaction of many waits for one. Every
// caller still gets its own statement's result, as if it had run alone.
//
// Its workers are started by newGroupTx and stopped by Close, which waits
// for them.
type groupTx struct {
	db   *sql.DB
	reqs chan *groupReq // closed by Close
	wg   sync.WaitGroup // the workers

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
}

type groupReq struct {
	ctx   context.Context
	query string
	args  []any
	done  chan groupResult // buffered: a worker never blocks on it
}

type groupResult struct {
	n   int64 // rows affected
	err error
}

func newGroupTx(db *sql.DB) *groupTx {
	g := &groupTx{db: db, reqs: make(chan *groupReq, groupSize*groupWorkers)}
	for range groupWorkers {
		g.wg.Add(1)
		go g.work()
	}
	return g
}

// exec runs query in the next shared transaction and returns the rows it
// affected.
func (g *groupTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	r := &groupReq{ctx: ctx, query: query, args: args, done: make(chan groupResult, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return 0, errGroupClosed
	}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		g.mu.RUnlock()
		return 0, ctx.Err()
	}
	g.mu.RUnlock()
	select {
	case res := <-r.done:
		return res.n, res.err
	case <-ctx.Done():
		// The statement may still commit; callers treat that as they
		// treat a reply lost on the network.
		return 0, ctx.Err()
	}
}

// Close stops the workers once the statements already sent have run.
func (g *groupTx) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.reqs)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// work takes what is waiting, up to groupSize statements, and commits
// them in one transaction.
func (g *groupTx) work() {
	defer g.wg.Done()
	for first := range g.reqs {
		batch := []*groupReq{first}
	fill:
		for len(batch) < groupSize {
			select {
			case r, ok := <-g.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		g.run(batch)
	}
}

// run commits batch in one transaction; if that fails, each statement
// runs alone, so that one bad statement does not fail the others.
func (g *groupTx) run(batch []*groupReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- groupResult{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	results, err := g.together(live)
	if err != nil {
		for _, r := range live {
			res, err := g.db.ExecContext(r.ctx, r.query, r.args...)
			r.done <- result(res, err)
		}
		return
	}
	for i, r := range live {
		r.done <- results[i]
	}
}

func (g *groupTx) together(batch []*groupReq) ([]groupResult, error) {
	// Not the callers' contexts: one caller giving up must not roll back
	// the others' statements. The bound keeps Close from waiting for ever
	// on a database that stopped answering.
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]groupResult, len(batch))
	for i, r := range batch {
		res, err := tx.ExecContext(ctx, r.query, r.args...)
		if err != nil {
			_ = tx.Rollback()
			return nil, err
		}
		out[i] = result(res, nil)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

func result(res sql.Result, err error) groupResult {
	if err != nil {
		return groupResult{err: fmt.Errorf("database: %w", err)}
	}
	n, err := res.RowsAffected()
	return groupResult{n: n, err: err}
}
