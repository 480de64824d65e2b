package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/transparency-dev/tessera"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/witness"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// TestMLDSAWitnessedLog: given a witness policy whose quorum is one
// ML-DSA-44 witness, Tessera asks that witness itself (first from size 0,
// then with a consistency proof) and checks its answer with formats/note,
// which go.mod selects at v0.1.1, before it publishes: no other party calls
// the witness here. The client verifies the published checkpoints under
// the same policy.
func TestMLDSAWitnessedLog(t *testing.T) {
	ctx := context.Background()
	skey, vkey, agent := newKeys(t)
	wskey, wvkey, err := witness.GenerateKey("witness.test/m", witness.MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	k, err := witness.ParseKey(wskey)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := policy.Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(k.Signer, logs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := httptest.NewServer(w.Handler())
	t.Cleanup(ws.Close)
	p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness m %s %s\nquorum m\n", vkey, wvkey, ws.URL)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := tessera.NewWitnessGroupFromPolicy([]byte(p.String()))
	if err != nil {
		t.Fatalf("Tessera refuses an ML-DSA-44 witness: %v", err)
	}
	tl := startLog(t, skey, agent, func(o *vlog.Options) { o.Witnesses = &g })
	l := viewOf(t, tl, vkey)
	l.Policy = p

	originHash := sha256.Sum256([]byte("example.test/vetting"))
	for _, n := range []uint64{3, 5} {
		tl.add(t, int(n)-int(tl.n)) // returns once a checkpoint covers them
		cp, _, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatalf("checkpoint at %d: %v", n, err)
		}
		if cp.Size != n || !reflect.DeepEqual(cp.Cosigners, []string{"m"}) {
			t.Fatalf("checkpoint of size %d cosigned by %q, want %d by m", cp.Size, cp.Cosigners, n)
		}
		// The witness's own record says it cosigned that size.
		stored, err := w.Checkpoint(hex.EncodeToString(originHash[:]))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := p.Verify(stored); err != nil || c.Size != n {
			t.Fatalf("the witness stored %v, %v; want size %d", c, err, n)
		}
	}
}
