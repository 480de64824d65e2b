package keys

import "encoding/base64"

func decodeStd(s string) ([]byte, error) { return base64.StdEncoding.Strict().DecodeString(s) }

func encodeURL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
