package receipts

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps verification free of server code: a relying party
// that verifies receipts pulls in go-jose, note, merkle and formats (with
// what they need), and nothing of Tessera, databases or HTTP servers.
func TestDependencies(t *testing.T) {
	allowed := []string{
		"github.com/go-jose/go-jose/v4",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
		"github.com/transparency-dev/formats",
		"filippo.io/mldsa", // formats' ML-DSA cosignatures
		"golang.org/x/crypto",
		"github.com/vesperlog/vesperlog/receipts",
		"github.com/vesperlog/vesperlog/receipts/vesper",
		"github.com/vesperlog/vesperlog/witness/policy",
		"github.com/vesperlog/vesperlog/log/vetting",
		"github.com/vesperlog/vesperlog/log/problem",
	}
	for _, pkg := range []string{".", "./vesper", "../log/vetting", "../witness/policy"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
	next:
		for _, dep := range strings.Fields(string(out)) {
			for _, a := range allowed {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					continue next
				}
			}
			t.Errorf("%s depends on %s, which a verifier should not need", pkg, dep)
		}
	}
}
