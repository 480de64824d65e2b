package passport

import "errors"

// CanonicalJSON returns v in RFC 8225 §9 deterministic form.
func CanonicalJSON(v any) ([]byte, error) { return nil, errors.ErrUnsupported }
