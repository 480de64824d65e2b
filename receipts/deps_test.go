package receipts

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps verification free of server code: a relying party
// that verifies receipts pulls in go-jose, note, merkle and formats (with
// what they need), and nothing of Tessera, databases or HTTP servers. A
// PASSporT verifier (receipts/passport) also pulls in the STI-CT formats
// (log/stict, not its server) and, through them, the format packages of
// certificate-transparency-go and Tessera's ctonly (RFC 6962 entries):
// exactly those, not ct-go's HTTP client or log lists, nor Tessera itself.
func TestDependencies(t *testing.T) {
	// stictDeps may be imported only by the PASSporT verifier and the
	// STI-CT formats; receipts itself stays free of them.
	stictDeps := []string{
		"github.com/vesperlog/vesperlog/log/stict",
		"github.com/google/certificate-transparency-go",
		"github.com/google/certificate-transparency-go/asn1",
		"github.com/google/certificate-transparency-go/tls",
		"github.com/google/certificate-transparency-go/x509",
		"github.com/google/certificate-transparency-go/x509/pkix",
		"github.com/transparency-dev/tessera/ctonly",
	}
	allowed := []string{
		"github.com/go-jose/go-jose/v4",
		"golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle",
		"github.com/transparency-dev/formats",
		"filippo.io/mldsa", // formats' ML-DSA cosignatures
		"golang.org/x/crypto",
		"github.com/vesperlog/vesperlog/receipts",
		"github.com/vesperlog/vesperlog/receipts/vesper",
		"github.com/vesperlog/vesperlog/receipts/passport",
		"github.com/vesperlog/vesperlog/witness/policy",
		"github.com/vesperlog/vesperlog/log/vetting",
		"github.com/vesperlog/vesperlog/log/problem",
	}
	for _, pkg := range []string{".", "./vesper", "./passport", "../log/vetting", "../log/stict", "../witness/policy"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
	next:
		for _, dep := range strings.Fields(string(out)) {
			if (pkg == "./passport" || pkg == "../log/stict") && slices.Contains(stictDeps, dep) {
				continue
			}
			for _, a := range allowed {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					continue next
				}
			}
			t.Errorf("%s depends on %s, which a verifier should not need", pkg, dep)
		}
	}
}
