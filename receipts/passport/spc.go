package passport

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vesperlog/vesperlog/log/stict"
)

// MaxSPCNumbers bounds an SPC table's size in bytes.
const MaxSPCNumbers = 1 << 20

// ParseSPCNumbers reads a verifier's table of the numbers each service
// provider code holds, for Options.SPCs: a JSON object from SPC to a list
// of telephone numbers and "START,COUNT" ranges, such as
//
//	{"1234": ["12025550100,100", "18001231234"]}
//
// A certificate that authorizes numbers by SPC (RFC 8226 §9) covers a
// number only through such a table, which the number registries keep.
func ParseSPCNumbers(b []byte) (stict.SPCResolver, error) {
	if len(b) > MaxSPCNumbers {
		return nil, fmt.Errorf("SPC table: %d bytes, at most %d", len(b), MaxSPCNumbers)
	}
	if err := checkJSON(b); err != nil {
		return nil, fmt.Errorf("SPC table: %w", err)
	}
	var m map[string][]string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("SPC table: %w", err)
	}
	table := make(map[string]stict.TNAuthList, len(m))
	for spc, nums := range m {
		l, err := stict.TNAuthListOf(nums)
		if err != nil {
			return nil, fmt.Errorf("SPC table: SPC %s: %w", spc, err)
		}
		table[spc] = l
	}
	return func(spc string) (stict.TNAuthList, bool) {
		l, ok := table[spc]
		return l, ok
	}, nil
}
