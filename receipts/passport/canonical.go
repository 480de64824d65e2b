package passport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of any JSON this package reads.
const maxJSONDepth = 32

// CanonicalJSON returns v in RFC 8225 §9 deterministic form: object
// members sorted by key (by code point), no whitespace or line breaks,
// UTF-8, and no HTML escaping. A json.RawMessage or []byte is taken as
// JSON text and re-serialized. Numbers must be integers (PASSporT claims
// have no others, and a float has no one canonical form); duplicate
// object keys are refused.
func CanonicalJSON(v any) ([]byte, error) {
	var in []byte
	switch x := v.(type) {
	case json.RawMessage:
		in = x
	case []byte:
		in = x
	default:
		b, err := marshalNoEscape(v)
		if err != nil {
			return nil, err
		}
		in = b
	}
	if err := checkJSON(in); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	// encoding/json writes map keys sorted and json.Number as given
	// (checkJSON allowed integers only).
	return marshalNoEscape(tree)
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkJSON accepts exactly one JSON value with no duplicate object keys,
// integer numbers only, and nesting of at most maxJSONDepth.
func checkJSON(b []byte) error {
	// encoding/json would turn invalid UTF-8 into U+FFFD silently.
	if !utf8.Valid(b) {
		return errors.New("JSON: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // in an object: the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("JSON: %w", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expect {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return fmt.Errorf("JSON: duplicate key %q", k)
				}
				top.keys[k] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.obj {
			top.expect = true // after a value, a key (or '}') follows
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) == maxJSONDepth {
					return fmt.Errorf("JSON: nested deeper than %d", maxJSONDepth)
				}
				stack = append(stack, &frame{obj: t == '{', keys: map[string]bool{}, expect: true})
			default:
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			if strings.ContainsAny(string(t), ".eE") {
				return fmt.Errorf("JSON: number %s is not an integer", t)
			}
		}
		if len(stack) == 0 && dec.More() {
			return errors.New("JSON: more than one value")
		}
	}
	if dec.InputOffset() == 0 {
		return errors.New("JSON: empty")
	}
	return nil
}
