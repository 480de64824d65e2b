package client_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// exampleLog opens testdata/example-log, a copy of a vetting log written
// by Tessera's POSIX driver (see TestWriteExampleLog), and its trust.
func exampleLog() *client.Log {
	vkey, _ := os.ReadFile("testdata/example-log.vkey")
	p, err := policy.ForLog(strings.TrimSpace(string(vkey)))
	if err != nil {
		panic(err)
	}
	return &client.Log{Origin: "example.test/vetting", Policy: p, Fetch: client.NewDirFetcher("testdata/example-log")}
}

// Verify a log's checkpoint and prove that an entry is in it.
func ExampleLog_VerifyInclusion() {
	ctx := context.Background()
	l := exampleLog()
	cp, _, err := l.Checkpoint(ctx) // verified under the policy
	if err != nil {
		fmt.Println(err)
		return
	}
	for e, err := range l.Entries(ctx, cp, 7, 1) {
		if err != nil {
			fmt.Println(err)
			return
		}
		err = l.VerifyInclusion(ctx, cp, e.Index, rfc6962.DefaultHasher.HashLeaf(e.Data))
		fmt.Printf("entry %d in the tree of size %d: %v\n", e.Index, cp.Size, err == nil)
		break
	}
	// Output: entry 7 in the tree of size 20: true
}

// Follow a log: the trusted state moves only to consistent checkpoints.
func ExampleLog_Update() {
	ctx := context.Background()
	state, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(state)
	l := exampleLog()
	old, cp, err := l.Update(ctx, state)
	fmt.Println(old == nil, cp.Size, err)
	old, cp, err = l.Update(ctx, state) // no news: still consistent
	fmt.Println(old.Size, cp.Size, err)
	// Output:
	// true 20 <nil>
	// 20 20 <nil>
}

// Audit a whole log: recompute its tree from its entries, and decode them.
func ExampleLog_Audit() {
	ctx := context.Background()
	l := exampleLog()
	cp, _, _ := l.Checkpoint(ctx)
	n := 0
	err := l.Audit(ctx, cp, client.AuditOptions{Check: func(_ uint64, e []byte) error {
		n++
		_, err := vetting.ParseLeaf(e)
		return err
	}})
	fmt.Println(n, err)
	// Output: 20 <nil>
}
