package load

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the load generator on the verifier's side: it
// needs nothing beyond what the client package (which speaks to a log and
// verifies its receipts) needs, so no server code, storage driver or
// database comes in.
func TestDependencies(t *testing.T) {
	deps := func(pkg string) map[string]bool {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		m := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			m[d] = true
		}
		return m
	}
	ours, clients := deps("."), deps("..")
	if !clients["github.com/vesperlog/vesperlog/client"] {
		t.Fatal("go list .. did not list the client package")
	}
	for d := range ours {
		if !clients[d] && d != "github.com/vesperlog/vesperlog/client/load" {
			t.Errorf("client/load depends on %s, which the client does not", d)
		}
	}
}
