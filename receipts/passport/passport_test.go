package passport

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

func jws(header, payload, sig string) string {
	e := base64.RawURLEncoding.EncodeToString
	return e([]byte(header)) + "." + e([]byte(payload)) + "." + sig
}

const (
	hdr = `{"alg":"ES256","typ":"passport"}`
	// RFC 8225 §9's example claims, in its deterministic form.
	rfc8225Claims = `{"dest":{"uri":["sip:alice@example.com"]},"iat":1443208345,"orig":{"tn":"12155551212"}}`
	sig           = "AAAA"
)

func TestParse(t *testing.T) {
	p, err := Parse(jws(hdr, rfc8225Claims, sig))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Orig: Orig{TN: "12155551212"}, Dest: Dest{URI: []string{"sip:alice@example.com"}}, IAT: 1443208345}
	if !reflect.DeepEqual(p.Claims, want) || !p.Header.Canonical || p.Header.Alg != "ES256" || p.Header.Typ != "passport" {
		t.Fatalf("Parse = %+v", p)
	}
	// SHAKEN (RFC 8588 §4's example order) with an rcd claim kept verbatim.
	p, err = Parse(jws(`{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example.org/passport.cer"}`,
		`{"attest":"A","dest":{"tn":["12155551213"]},"iat":1443208345,"orig":{"tn":"12155551212"},"origid":"123e4567-e89b-12d3-a456-426655440000","rcd":{"nam": "Alice"}}`, sig))
	if err != nil {
		t.Fatal(err)
	}
	if p.Claims.Attest != "A" || p.Claims.OrigID != "123e4567-e89b-12d3-a456-426655440000" || string(p.Claims.Other["rcd"]) != `{"nam": "Alice"}` ||
		p.Header.PPT != "shaken" || p.Header.X5U != "https://cert.example.org/passport.cer" || p.Header.Canonical {
		t.Fatalf("Parse = %+v (rcd %s)", p, p.Claims.Other["rcd"])
	}
	for _, c := range []struct {
		name, header, payload, sig string
		want                       error
	}{
		{"orig with both tn and uri", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1","uri":"sip:a@b"}}`, sig, ErrMalformed},
		{"orig tn with +", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"+12155551212"}}`, sig, ErrMalformed},
		{"orig tn of 16 digits", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1234567890123456"}}`, sig, ErrMalformed},
		{"orig tn an array", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":["1"]}}`, sig, ErrMalformed},
		{"dest tn a string", hdr, `{"dest":{"tn":"1"},"iat":1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"dest empty", hdr, `{"dest":{},"iat":1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"dest empty array", hdr, `{"dest":{"tn":[]},"iat":1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"dest unknown member", hdr, `{"dest":{"tel":["1"]},"iat":1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"no iat", hdr, `{"dest":{"tn":["1"]},"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"no orig", hdr, `{"dest":{"tn":["1"]},"iat":1}`, sig, ErrMalformed},
		{"iat a float", hdr, `{"dest":{"tn":["1"]},"iat":1.5,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"iat negative", hdr, `{"dest":{"tn":["1"]},"iat":-1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"iat quoted", hdr, `{"dest":{"tn":["1"]},"iat":"1","orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"attest D", hdr, `{"attest":"D","dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"origid not a UUID", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"origid":"abc"}`, sig, ErrMalformed},
		{"duplicate claim", hdr, `{"dest":{"tn":["1"]},"iat":1,"iat":2,"orig":{"tn":"1"}}`, sig, ErrMalformed},
		{"a float in another claim", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"x":1e3}`, sig, ErrMalformed},
		{"claims not an object", hdr, `[1]`, sig, ErrMalformed},
		{"rcd without nam (RFC 9795)", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"rcd":{"icn":"https://a.example/i.png"}}`, sig, ErrMalformed},
		{"rcd not an object", hdr, `{"dest":{"tn":["1"]},"iat":1,"orig":{"tn":"1"},"rcd":"Alice"}`, sig, ErrMalformed},
		{"trailing JSON", hdr, rfc8225Claims + `{}`, sig, ErrMalformed},
		{"invalid UTF-8", hdr, "{\"dest\":{\"tn\":[\"1\"]},\"iat\":1,\"orig\":{\"uri\":\"\xff\"}}", sig, ErrMalformed},
		{"duplicate header member", `{"alg":"ES256","alg":"none","typ":"passport"}`, rfc8225Claims, sig, ErrMalformed},
		{"no alg", `{"typ":"passport"}`, rfc8225Claims, sig, ErrMalformed},
		{"x5c base64url, not standard", `{"alg":"ES256","typ":"passport","x5c":["-_-_"]}`, rfc8225Claims, sig, ErrMalformed},
		{"x5c empty", `{"alg":"ES256","typ":"passport","x5c":[]}`, rfc8225Claims, sig, ErrMalformed},
		{"x5u not https", `{"alg":"ES256","typ":"passport","x5u":"http://a.example/c.pem"}`, rfc8225Claims, sig, ErrMalformed},
		{"crit", `{"alg":"ES256","crit":["x"],"typ":"passport"}`, rfc8225Claims, sig, ErrHeader},
		{"signature with padding", hdr, rfc8225Claims, "AA==", ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if p, err := Parse(jws(c.header, c.payload, c.sig)); !errors.Is(err, c.want) {
				t.Fatalf("Parse = %+v, %v; want %v", p, err, c.want)
			}
		})
	}
	for _, tok := range []string{"", "a.b", "a.b.c.d", "..AAAA", "eyJ=.e30.AAAA", strings.Repeat("a", MaxToken+1)} {
		if _, err := Parse(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.20q) = %v, want ErrMalformed", tok, err)
		}
	}
}

func TestCanonicalJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{ "orig" : {"tn":"12155551212"}, "iat":1443208345, "dest":{"uri":["sip:alice@example.com"]} }`, rfc8225Claims},
		{`{"b":"<&>","a":"é\u00e9","c":[3,1,{"z":0,"y":-2}]}`, `{"a":"éé","b":"<&>","c":[3,1,{"y":-2,"z":0}]}`},
		{`"x"`, `"x"`},
		{`{"nam":"Vesper Test Caller"}`, stitest.RCDJSON},
	} {
		got, err := CanonicalJSON(json.RawMessage(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{`1.5`, `{"a":1,"a":2}`, `{}{}`, ``, `{"a":1e2}`, "\"\xff\"", strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		if got, err := CanonicalJSON(json.RawMessage(in)); err == nil {
			t.Errorf("CanonicalJSON(%q) = %s, want an error", in, got)
		}
	}
	// A Go value: map keys sorted, no HTML escaping, no trailing newline.
	got, err := CanonicalJSON(map[string]any{"z": "<", "a": int64(1)})
	if err != nil || string(got) != `{"a":1,"z":"<"}` {
		t.Errorf("CanonicalJSON(map) = %s, %v", got, err)
	}
}

// TestSignCanonical: Sign writes the header and payload in RFC 8225 §9
// form, dest arrays sorted, x5c in standard base64.
func TestSignCanonical(t *testing.T) {
	f := newFixture(t)
	tok, err := Sign(Claims{Orig: Orig{TN: "12025550101"}, Dest: Dest{TN: []string{"3", "12", "2"}}, IAT: 1443208345,
		Attest: "B", OrigID: "123e4567-e89b-12d3-a456-426655440000", Other: map[string]json.RawMessage{"rcd": json.RawMessage(`{ "nam": "A" }`)}},
		SignOptions{Key: f.p.TN.Key, Chain: f.p.Chain(f.p.TN), PPT: "shaken", X5U: "https://cert.example.org/passport.cer"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	x5c := `["` + base64.StdEncoding.EncodeToString(f.p.TN.DER) + `","` + base64.StdEncoding.EncodeToString(f.p.Intermediate.DER) + `"]`
	if want := `{"alg":"ES256","ppt":"shaken","typ":"passport","x5c":` + x5c + `,"x5u":"https://cert.example.org/passport.cer"}`; string(h) != want {
		t.Errorf("header\n%s\nwant\n%s", h, want)
	}
	if want := `{"attest":"B","dest":{"tn":["12","2","3"]},"iat":1443208345,"orig":{"tn":"12025550101"},"origid":"123e4567-e89b-12d3-a456-426655440000","rcd":{"nam":"A"}}`; string(p) != want {
		t.Errorf("payload\n%s\nwant\n%s", p, want)
	}
	if got, err := Parse(tok); err != nil || !got.Header.Canonical {
		t.Errorf("Parse(Sign) = %+v, %v", got, err)
	}
	// An x5u with a query stays unescaped (go-jose's encoder would write
	// \u0026), and go-jose verifies the result.
	tok, err = Sign(Claims{Orig: Orig{TN: "1"}, Dest: Dest{TN: []string{"2"}}, IAT: 1}, SignOptions{Key: f.p.TN.Key, NoX5C: true, X5U: "https://a.example/c?a=1&b=<2>"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ = base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if want := `{"alg":"ES256","typ":"passport","x5u":"https://a.example/c?a=1&b=<2>"}`; string(h) != want {
		t.Errorf("header %s, want %s", h, want)
	}
	if got, err := Parse(tok); err != nil || !got.Header.Canonical || checkSignature(got, f.p.TN.DER) != nil {
		t.Errorf("Parse(Sign) = %+v, %v", got, err)
	}
	for _, c := range []Claims{
		{Orig: Orig{TN: "1", URI: "sip:a@b"}, Dest: Dest{TN: []string{"1"}}},
		{Orig: Orig{TN: "1"}},
		{Orig: Orig{TN: "+1"}, Dest: Dest{TN: []string{"1"}}},
		{Orig: Orig{TN: "1"}, Dest: Dest{TN: []string{"1"}}, Other: map[string]json.RawMessage{"x": json.RawMessage(`1.5`)}},
		{Orig: Orig{TN: "1"}, Dest: Dest{TN: []string{"1"}}, Other: map[string]json.RawMessage{"iat": json.RawMessage(`5`)}},
		{Orig: Orig{TN: "1"}, Dest: Dest{TN: []string{"1"}}, Other: map[string]json.RawMessage{"rcd": json.RawMessage(`{}`)}},
	} {
		if tok, err := Sign(c, SignOptions{Key: f.p.TN.Key, Chain: f.p.Chain(f.p.TN)}); err == nil {
			t.Errorf("Sign(%+v) = %s, want an error", c, tok)
		}
	}
}

func TestIdentityHeader(t *testing.T) {
	const tok = "eyJh.eyJi.c2ln"
	for _, c := range []struct {
		in   string
		want IdentityHeader
		str  string
	}{
		{tok + ";info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken",
			IdentityHeader{Token: tok, Info: "https://cert.example.org/passport.cer", Alg: "ES256", PPT: "shaken"}, ""},
		{"Identity: " + tok + " ; info = <https://a.example/c;x=1> ;ppt=rcd;foo;bar=\"q;v\"",
			IdentityHeader{Token: tok, Info: "https://a.example/c;x=1", PPT: "rcd", Params: map[string]string{"foo": "", "bar": `"q;v"`}},
			tok + ";info=<https://a.example/c;x=1>;ppt=rcd;bar=\"q;v\";foo"},
		{"y:" + tok, IdentityHeader{Token: tok}, tok},
		{tok, IdentityHeader{Token: tok}, tok},
	} {
		h, err := ParseIdentityHeader(c.in)
		if err != nil || !reflect.DeepEqual(*h, c.want) {
			t.Errorf("ParseIdentityHeader(%q) = %+v, %v; want %+v", c.in, h, err, c.want)
			continue
		}
		str := c.str
		if str == "" {
			str = c.in
		}
		if h.String() != str {
			t.Errorf("String = %q, want %q", h.String(), str)
		}
		if h2, err := ParseIdentityHeader(h.String()); err != nil || !reflect.DeepEqual(h, h2) {
			t.Errorf("round trip = %+v, %v", h2, err)
		}
	}
	for _, in := range []string{
		"",
		tok + ";",
		tok + ";info=https://no.brackets/",
		tok + ";info=<relative/path>",
		tok + ";info=<https://a.example/",
		tok + ";alg=ES256;alg=ES256",
		tok + ";ppt=sha ken",
		tok + ";alg=\"ES256\"",
		"eyJh+.eyJi.c2ln;alg=ES256", // base64, not base64url (errata 6499)
		tok + ";=x",
		tok + ";a=\"unterminated",
	} {
		if h, err := ParseIdentityHeader(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseIdentityHeader(%q) = %+v, %v; want ErrMalformed", in, h, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(jws(hdr, rfc8225Claims, sig))
	f.Add(jws(`{"alg":"ES256","ppt":"shaken","typ":"passport","x5c":["AAAA"]}`, `{"attest":"A","dest":{"tn":["1"],"uri":["sip:a@b"]},"iat":1,"orig":{"uri":"sip:c@d"},"origid":"123e4567-e89b-12d3-a456-426655440000","rcd":{"nam":"x"}}`, ""))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := Parse(tok)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrHeader) {
				t.Fatalf("Parse error %v is neither ErrMalformed nor ErrHeader", err)
			}
			return
		}
		// What parses has its required claims, and signs back to a token
		// that parses to the same claims.
		if (p.Claims.Orig.TN == "") == (p.Claims.Orig.URI == "") || (p.Claims.Dest.TN == nil && p.Claims.Dest.URI == nil) {
			t.Fatalf("Parse accepted %+v", p.Claims)
		}
		b, err := p.Claims.canonical()
		if err != nil {
			t.Fatalf("canonical(%+v): %v", p.Claims, err)
		}
		c2, err := parseClaims(b)
		if err != nil {
			t.Fatalf("parseClaims(%s): %v", b, err)
		}
		sorted := p.Claims
		b2, _ := c2.canonical()
		if string(b2) != string(b) {
			t.Fatalf("%+v re-encodes as %s, then %s", sorted, b, b2)
		}
	})
}

func FuzzParseIdentityHeader(f *testing.F) {
	f.Add("Identity: eyJh.eyJi.c2ln;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken")
	f.Add("eyJh.eyJi.c2ln ; foo ; bar=\"x;y\"")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseIdentityHeader(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		h2, err := ParseIdentityHeader(h.String())
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("%q parsed to %+v, whose String %q parses to %+v, %v", v, h, h.String(), h2, err)
		}
	})
}
