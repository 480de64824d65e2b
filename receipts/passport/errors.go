package passport

import (
	"errors"

	"github.com/vesperlog/vesperlog/log/stict"
)

// Errors of Verify, one per check, in the order Verify makes them; each is
// returned wrapped with detail. ErrMalformed and ErrRequest are the
// caller's input (HTTP 400); the others are a PASSporT that does not
// verify (HTTP 422).
var (
	ErrMalformed    = errors.New("malformed PASSporT")
	ErrHeader       = errors.New("PASSporT header not acceptable")
	ErrSignature    = errors.New("PASSporT signature does not verify")
	ErrStale        = errors.New("PASSporT iat is not fresh")
	ErrChain        = errors.New("certificate chain does not verify")
	ErrTNNotCovered = stict.ErrTNNotCovered // the same sentinel as TNAuthList.Authorize's
	ErrConstraint   = errors.New("claim constraints of the certificate not met")
	ErrCommitment   = errors.New("claim does not match the certificate's commitment")
	ErrSCT          = errors.New("certificate transparency check failed")
	ErrNotIncluded  = errors.New("certificate not proved included in the STI-CT log")
	ErrRSPMismatch  = errors.New("rsp PASSporT does not match the original")
)

// checks names each sentinel's check, for command-line and JSON output.
var checks = []struct {
	err  error
	name string
}{
	{ErrMalformed, "parse"},
	{ErrHeader, "header"},
	{ErrSignature, "signature"},
	{ErrStale, "freshness"},
	{ErrChain, "chain"},
	{ErrTNNotCovered, "tnauthlist"},
	{ErrConstraint, "constraints"},
	{ErrCommitment, "commitment"},
	{ErrSCT, "scts"},
	{ErrNotIncluded, "inclusion"},
	{ErrRSPMismatch, "rsp"},
	{ErrRequest, "request"},
}

// Check names the check err failed: "header", "signature", "freshness",
// "chain", "tnauthlist", "constraints", "commitment", "scts", "inclusion",
// "rsp", or "parse" and "request" for malformed input; "" if err is none
// of Verify's.
func Check(err error) string {
	for _, c := range checks {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}
