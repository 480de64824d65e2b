package passport

import (
	"encoding/json"
	"errors"
)

// ValueConstraint returns the transparent permitted value for claim value v.
func ValueConstraint(v json.RawMessage) (string, error) { return "", errors.ErrUnsupported }

// HashConstraint returns the semi-private permitted value for claim value v.
func HashConstraint(v json.RawMessage) (string, error) { return "", errors.ErrUnsupported }

// CommitConstraint returns the private permitted value for claim value v and salt.
func CommitConstraint(v json.RawMessage, salt []byte) (string, error) {
	return "", errors.ErrUnsupported
}

// Disclosure is what a claim's holder discloses out of band for a
// committed claim: the salt, and the value if the PASSporT lacks it.
type Disclosure struct {
	Salt  []byte
	Value json.RawMessage
}
