package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const xyExample = `log {L1}

witness X1 {X1}
witness X2 {X2}
witness X3 {X3}
group X-witnesses 2 X1 X2 X3

witness Y1 {Y1}
witness Y2 {Y2}
witness Y3 {Y3}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
`

const x123 = "witness X1 {X1}\nwitness X2 {X2}\nwitness X3 {X3}\n"

// parseCase is one row of TestParse. spec quotes the rule (from
// c2sp.org/tlog-policy unless it says otherwise) that the row checks.
// line == 0 means the policy must be accepted; otherwise Parse must refuse
// it with an error naming that line and containing err.
type parseCase struct {
	name, spec, in string
	line           int
	err            string
}

var parseCases = []parseCase{
	// Accepted.
	{name: "spec example", in: xyExample,
		spec: "This is an example of a policy with a quorum defined using two levels of groups."},
	{name: "only quorum", in: "quorum none\n",
		spec: "Only the quorum is mandatory."},
	{name: "no witnesses", in: "log {L1}\nquorum none\n",
		spec: "A policy without witness cosigning can be defined using a `quorum none` line, and in this case, the set of witnesses may be empty."},
	{name: "unused witnesses with quorum none", in: "log {L1}\nwitness X1 {X1}\nquorum none\n",
		spec: "To not require any cosignatures at all, one can use the predefined name `none`"},
	{name: "space and tab whitespace", in: " \tlog  {L1} \t\n\t witness  X1\t{X1}  https://w.example/x1 \nquorum\t X1 \t\n",
		spec: "items on each line are separated by \"whitespace\", which in this specification means sequences of ASCII space and tab characters *only*. Leading and trailing whitespace is allowed."},
	{name: "empty lines", in: "\n   \n\t\nquorum none\n\n \n",
		spec: "Empty lines (whitespace only) and comment lines ... are allowed and ignored."},
	{name: "comment lines", in: "# top\n  # indented\n\t# tab\n#\n#quorum X1\nquorum none\n# after\n",
		spec: "comment lines (lines starting with \"#\", possibly preceded by whitespace) are allowed and ignored."},
	{name: "non-ASCII comment", in: "# Kelvin \xe2\x84\xaa, raw \xff\xfe, tab\there\nquorum none\n",
		spec: "Non-ASCII octets may appear in names, URLs and comments."},
	{name: "log URL", in: "log {L1} https://log.example/\nquorum none\n",
		spec: "log <vkey> [<url>]"},
	{name: "witness URL", in: "witness X1 {X1} https://w.example/\xe2\x84\xaa\nquorum X1\n",
		spec: "witness <name> <vkey> [<url>]; allow international domain names in URLs"},
	{name: "any order", in: "witness X1 {X1}\nlog {L2}\nwitness X2 {X2}\nlog {L1}\nquorum X2\n",
		spec: "Lines defining witnesses and logs can appear in any order"},
	{name: "two logs", in: "log {L1}\nlog {L2}\nquorum none\n",
		spec: "When the policy is used for verifying a proof, all of the listed logs are accepted."},
	{name: "quorum one witness", in: "witness X1 {X1}\nquorum X1\n",
		spec: "In the simplest case, the name refers to a witness"},
	{name: "group all", in: x123 + "group G all X1 X2 X3\nquorum G\n",
		spec: "group <name> all <name>..."},
	{name: "group any", in: x123 + "group G any X1 X2 X3\nquorum G\n",
		spec: "group <name> any <name>..."},
	{name: "group k=1", in: x123 + "group G 1 X1 X2 X3\nquorum G\n",
		spec: "it is required that 1 <= k <= n"},
	{name: "group k=n", in: x123 + "group G 3 X1 X2 X3\nquorum G\n",
		spec: "it is required that 1 <= k <= n"},
	{name: "group n=1", in: "witness X1 {X1}\ngroup G all X1\nquorum G\n",
		spec: "At least one member must be listed (i.e., n >= 1)."},
	{name: "group of groups", in: x123 + "group A any X1\ngroup B any X2 X3\ngroup C all A B\nquorum C\n",
		spec: "each group member being either a witness or another group"},
	{name: "group shared by groups", in: x123 + "group A any X1 X2\ngroup B all A X3\ngroup C any A B\nquorum C\n",
		spec: "Each defined name can be listed as a group member at most once. (Per group: A appears once in B and once in C.)"},
	{name: "definitions after quorum", in: "witness X1 {X1}\nquorum X1\nwitness X2 {X2}\nlog {L1}\n",
		spec: "the quorum line must specify a witness or group defined earlier (nothing says it is last)"},
	{name: "opaque names", in: "witness K {X1}\nwitness \xe2\x84\xaa {X2}\nwitness \xff\xfe {X3}\ngroup G all K \xe2\x84\xaa \xff\xfe\nquorum G\n",
		spec: "names must be handled as opaque octet strings, e.g., the name 0x4B (ASCII \"K\") is different from the name 0xE2 0x84 0xAA"},
	{name: "NBSP is part of a name", in: "witness a\xc2\xa0b {X1}\nquorum a\xc2\xa0b\n",
		spec: "whitespace ... means sequences of ASCII space and tab characters *only*"},
	{name: "hash inside a line", in: "witness a#b {X1}\nwitness #c {X2}\ngroup g all a#b #c\nquorum g\n",
		spec: "comment lines (lines starting with \"#\", possibly preceded by whitespace)"},
	{name: "keyword-like names", in: "witness any {X1}\nwitness quorum {X2}\ngroup all all any quorum\nquorum all\n",
		spec: "Witnesses (and groups ...) are named. (Fields are positional, so keywords are names too.)"},
	{name: "witness key rotation", in: "witness X1 {X1}\nwitness X1new {X1rotated}\ngroup G any X1 X1new\nquorum G\n",
		spec: "Two vkeys are considered *duplicate* if they wrap the same underlying public key (same key name, different keys is not duplicate)"},
	{name: "witness ML-DSA key", in: "witness M {MLDSA}\nquorum none\n",
		spec: "tlog-cosignature: ML-DSA-44 public keys MAY be encoded as vkeys with signature type 0x06 and the 1312-byte ML-DSA-44 cosigner public key"},
	{name: "mixed Ed25519 and ML-DSA group", in: "log {L1}\nwitness X1 {X1}\nwitness M1 {M1}\nwitness X2 {X2}\ngroup G 2 X1 M1 X2\nquorum G\n",
		spec: "tlog-cosignature: This document specifies two cosignature types: one based on Ed25519, and one based on ML-DSA-44."},
	{name: "ML-DSA group of groups", in: x123 + "witness M1 {M1}\nwitness M2 {M2}\ngroup X any X1 X2 X3\ngroup M all M1 M2\ngroup XM all X M\nquorum XM\n",
		spec: "each group member being either a witness or another group (of either key type)"},
	{name: "ML-DSA key name of 255 bytes", in: "witness M {MNAME255}\nquorum M\n",
		spec: "tlog-cosignature: opaque cosigner_name<1..2^8-1>"},

	// Refused: structure.
	{name: "empty", in: "", line: 1, err: "empty policy",
		spec: "A policy file must include exactly one quorum line."},
	{name: "no quorum", in: "log {L1}\nwitness X1 {X1}\n", line: 2, err: "without a quorum line",
		spec: "A policy file must include exactly one quorum line."},
	{name: "only comments", in: "# quorum none\n", line: 1, err: "without a quorum line",
		spec: "A policy file must include exactly one quorum line."},
	{name: "two quorum lines", in: "witness X1 {X1}\nquorum X1\nquorum none\n", line: 3, err: "second quorum line (the first is line 2)",
		spec: "A policy file must include exactly one quorum line."},
	{name: "same quorum twice", in: "quorum none\nquorum none\n", line: 2, err: "second quorum line",
		spec: "A policy file must include exactly one quorum line."},
	{name: "no final newline", in: "quorum none", line: 1, err: "not terminated by a newline",
		spec: "The policy file is line based, where each line is terminated by ASCII newline"},
	{name: "no final newline after comment", in: "quorum none\n# end", line: 2, err: "not terminated by a newline",
		spec: "The policy file is line based, where each line is terminated by ASCII newline"},
	{name: "unknown keyword", in: "witnesses X1 {X1}\nquorum none\n", line: 1, err: `unknown keyword "witnesses"`,
		spec: "A log is defined by a line `log <vkey> [<url>]` (and likewise witness, group, quorum)"},
	{name: "keyword case", in: "Quorum none\n", line: 1, err: "unknown keyword",
		spec: "quorum <name>"},
	{name: "NBSP is not whitespace", in: "quorum\xc2\xa0none\n", line: 1, err: "unknown keyword",
		spec: "whitespace ... means sequences of ASCII space and tab characters *only*"},
	{name: "trailing comment", in: "quorum none # no witnesses\n", line: 1, err: "quorum line has 5 fields",
		spec: "comment lines (lines starting with \"#\" ...): a '#' after a field is not a comment"},

	// Refused: character set.
	{name: "CRLF", in: "quorum none\r\n", line: 1, err: "carriage return",
		spec: "The only allowed control characters are tab and newline"},
	{name: "NUL", in: "quorum\x00none\n", line: 1, err: "octet 0x00",
		spec: "the allowed octet values are 0x09 (tab), 0x0A (newline), 0x20-0x7E, and 0x80-0xFF."},
	{name: "vertical tab", in: "quorum\vnone\n", line: 1, err: "octet 0x0b",
		spec: "the items on each line are separated by ... ASCII space and tab characters *only*"},
	{name: "form feed", in: "quorum none\n\f\n", line: 2, err: "octet 0x0c",
		spec: "The only allowed control characters are tab and newline"},
	{name: "DEL", in: "quorum none\x7f\n", line: 1, err: "octet 0x7f",
		spec: "the allowed octet values are 0x09 (tab), 0x0A (newline), 0x20-0x7E, and 0x80-0xFF."},
	{name: "control in comment", in: "# esc \x1b[0m\nquorum none\n", line: 1, err: "octet 0x1b",
		spec: "The only allowed control characters are tab and newline (anywhere in the file)"},

	// Refused: logs.
	{name: "log without vkey", in: "log\nquorum none\n", line: 1, err: "log line has 1 fields",
		spec: "log <vkey> [<url>]"},
	{name: "log extra field", in: "log {L1} https://a/ https://b/\nquorum none\n", line: 1, err: "log line has 4 fields",
		spec: "log <vkey> [<url>]"},
	{name: "log cosignature key", in: "log {X1}\nquorum none\n", line: 1, err: "a log key is an Ed25519 note key (0x01), an RFC 6962 key (0x05) or an ML-DSA-44 cosignature key (0x06)",
		spec: "Log and witness keys must use a signature type approprate respective function, see tlog-checkpoint"},
	{name: "duplicate log", in: "log {L1}\nlog {L1}\nquorum none\n", line: 2, err: "same public key",
		spec: "Duplicate logs, i.e., multiple log lines with the same public key, are not allowed."},
	{name: "duplicate log under another name", in: "log {L1}\nlog {L1renamed}\nquorum none\n", line: 2, err: "same public key",
		spec: "Two vkeys are considered *duplicate* if they wrap the same underlying public key, even if they differ by key name and key id."},
	{name: "two keys of one type for one origin", in: "log {L1}\nlog {L1other}\nquorum none\n", line: 2, err: `log origin "example.com/log1" already has a 0x01 (Ed25519 note key) key`,
		spec: "This name MUST correspond to the log's origin line, representing the identity of the log. (A log may have one key per signature type; two of one type would be ambiguous.)"},
	{name: "log key reused by witness", in: "log {L1}\nwitness W {L1asCosig}\nquorum none\n", line: 2, err: "same public key as log",
		spec: "signed-note: The same public key SHOULD NOT be reused for different signature types"},

	// Refused: witnesses.
	{name: "witness without vkey", in: "witness X1\nquorum none\n", line: 1, err: "witness line has 2 fields",
		spec: "witness <name> <vkey> [<url>]"},
	{name: "witness extra field", in: "witness X1 {X1} https://a/ b\nquorum none\n", line: 1, err: "witness line has 5 fields",
		spec: "witness <name> <vkey> [<url>]"},
	{name: "witness note key", in: "witness X1 {X1as01}\nquorum none\n", line: 1, err: "a witness key is an Ed25519 cosignature/v1 key (0x04) or an ML-DSA-44 cosignature key (0x06)",
		spec: "Log and witness keys must use a signature type approprate respective function, see ... tlog-cosignature"},
	{name: "ML-DSA key 1311 bytes", in: "witness M {MSHORT}\nquorum none\n", line: 1, err: "0x06 (ML-DSA-44 cosignature) key is 1311 bytes, want 1312",
		spec: "tlog-cosignature: the 1312-byte ML-DSA-44 cosigner public key as the public key material"},
	{name: "ML-DSA key 1313 bytes", in: "witness M {MLONG}\nquorum none\n", line: 1, err: "1313 bytes, want 1312",
		spec: "tlog-cosignature: the 1312-byte ML-DSA-44 cosigner public key as the public key material"},
	{name: "ML-DSA key name of 256 bytes", in: "witness M {MNAME256}\nquorum none\n", line: 1, err: "key name is 256 bytes",
		spec: "tlog-cosignature: opaque cosigner_name<1..2^8-1> (the signed message cannot hold a longer name)"},
	{name: "duplicate ML-DSA witness under another name", in: "witness M1 {M1}\nwitness M2 {M1renamed}\nquorum none\n", line: 2, err: `same public key as witness "M1"`,
		spec: "Two vkeys are considered *duplicate* if they wrap the same underlying public key, even if they differ by key name and key id."},
	{name: "duplicate witness", in: "witness X1 {X1}\nwitness X2 {X1}\nquorum none\n", line: 2, err: `same public key as witness "X1"`,
		spec: "Duplicate witnesses, i.e., multiple witness lines with the same public key, are not allowed."},
	{name: "duplicate witness under another name", in: "witness X1 {X1}\nwitness X2 {X1renamed}\nquorum none\n", line: 2, err: "same public key",
		spec: "Two vkeys are considered *duplicate* if they wrap the same underlying public key, even if they differ by key name and key id."},
	{name: "witness name twice", in: "witness X1 {X1}\nwitness X1 {X2}\nquorum none\n", line: 2, err: `name "X1" is already defined as a witness`,
		spec: "Witnesses and groups share a single namespace."},
	{name: "witness named none", in: "witness none {X1}\nquorum none\n", line: 1, err: "predefined",
		spec: "The special name `none` is predefined"},

	// Refused: vkeys.
	{name: "not a vkey", in: "log example.com/log1\nquorum none\n", line: 1, err: "is not <name>+<key ID>+<key>",
		spec: "signed-note: <key name>+hex(32-bit key ID)+base64(signature type || public key)"},
	{name: "wrong key ID", in: "witness X1 {BADID}\nquorum none\n", line: 1, err: "does not match the key",
		spec: "signed-note: The key name and ID MUST match those used in the signatures."},
	{name: "uppercase key ID", in: "witness U {UPPERID}\nquorum none\n", line: 1, err: "8 lowercase hex digits",
		spec: "signed-note: The hex encoding ... is the fixed length lowercase Base 16 encoding"},
	{name: "non-canonical base64", in: "log a+00000000+AB==\nquorum none\n", line: 1, err: "canonical",
		spec: "signed-note: the base64 encoding of the concatenation of the signature type and the public key material"},
	{name: "short key", in: "log {SHORT}\nquorum none\n", line: 1, err: "31 bytes, want 32",
		spec: "signed-note: The public key material for Ed25519 vkeys is the 32-byte Ed25519 public key"},
	{name: "key name with space in vkey", in: "log a\xc2\xa0b+00000000+AQ==\nquorum none\n", line: 1, err: "key name",
		spec: "signed-note: Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus (U+002B) characters."},

	// Refused: groups.
	{name: "group without members", in: "witness X1 {X1}\ngroup G any\nquorum G\n", line: 2, err: "at least one member",
		spec: "At least one member must be listed (i.e., n >= 1)."},
	{name: "group without threshold", in: "witness X1 {X1}\ngroup G\nquorum G\n", line: 2, err: "at least one member",
		spec: "group <name> <k> <name>..."},
	{name: "k=0", in: x123 + "group G 0 X1 X2 X3\nquorum G\n", line: 4, err: "1 <= k <= n",
		spec: "it is required that 1 <= k <= n"},
	{name: "k greater than n", in: x123 + "group G 4 X1 X2 X3\nquorum G\n", line: 4, err: "1 <= k <= n = 3",
		spec: "it is required that 1 <= k <= n"},
	{name: "k negative", in: x123 + "group G -1 X1 X2 X3\nquorum G\n", line: 4, err: "not \"all\", \"any\" or a decimal number",
		spec: "If k is given numerically, it must be written in decimal"},
	{name: "k with plus", in: x123 + "group G +2 X1 X2 X3\nquorum G\n", line: 4, err: "decimal number",
		spec: "If k is given numerically, it must be written in decimal"},
	{name: "k hex", in: x123 + "group G 0x2 X1 X2 X3\nquorum G\n", line: 4, err: "decimal number",
		spec: "If k is given numerically, it must be written in decimal"},
	{name: "k leading zero", in: x123 + "group G 02 X1 X2 X3\nquorum G\n", line: 4, err: "leading zero",
		spec: "If k is given numerically, it must be written in decimal (one spelling: no leading zeroes)"},
	{name: "k huge", in: x123 + "group G 99999999999999999999 X1 X2 X3\nquorum G\n", line: 4, err: "out of range",
		spec: "it is required that 1 <= k <= n"},
	{name: "ALL", in: x123 + "group G ALL X1 X2 X3\nquorum G\n", line: 4, err: "decimal number",
		spec: "The keywords \"all\" and \"any\" can be used instead of a numeric threshold."},
	{name: "member twice", in: x123 + "group G 2 X1 X2 X1\nquorum G\n", line: 4, err: `member "X1" is listed more than once`,
		spec: "Each defined name can be listed as a group member at most once."},
	{name: "member defined later", in: "witness X1 {X1}\ngroup G any X1 X2\nwitness X2 {X2}\nquorum G\n", line: 2, err: `member "X2" is not a witness or group defined on a preceding line`,
		spec: "a group definition can only refer to names defined on preceding lines."},
	{name: "member undefined", in: "witness X1 {X1}\ngroup G any X1 X9\nquorum G\n", line: 2, err: `member "X9"`,
		spec: "A line defining a group can only reference names of groups and witnesses defined on preceding lines."},
	{name: "group names itself", in: "witness X1 {X1}\ngroup G any X1 G\nquorum G\n", line: 2, err: `member "G" is not`,
		spec: "(This also rules out circular group definitions)."},
	{name: "none as member", in: "witness X1 {X1}\ngroup G any X1 none\nquorum G\n", line: 2, err: "not a valid group member",
		spec: "The special name `none` is predefined; it can be used when defining the quorum, but it is invalid as a group member."},
	{name: "group named none", in: "witness X1 {X1}\ngroup none any X1\nquorum none\n", line: 2, err: "predefined",
		spec: "The special name `none` is predefined"},
	{name: "group with witness name", in: x123 + "group X1 any X2 X3\nquorum X1\n", line: 4, err: `name "X1" is already defined as a witness`,
		spec: "Witnesses and groups share a single namespace."},
	{name: "group name twice", in: x123 + "group G any X1\ngroup G any X2\nquorum G\n", line: 5, err: `name "G" is already defined as a group`,
		spec: "Witnesses and groups share a single namespace."},
	{name: "witness with group name", in: "witness X1 {X1}\ngroup G any X1\nwitness G {X2}\nquorum G\n", line: 3, err: `name "G" is already defined as a group`,
		spec: "Witnesses and groups share a single namespace."},

	// Refused: quorum.
	{name: "quorum undefined", in: "quorum X1\n", line: 1, err: `quorum "X1" is not a witness or group defined on a preceding line`,
		spec: "the name must be properly defined on a line preceding the quorum definition."},
	{name: "quorum before definition", in: "quorum X1\nwitness X1 {X1}\n", line: 1, err: "defined on a preceding line",
		spec: "the name must be properly defined on a line preceding the quorum definition."},
	{name: "quorum without name", in: "quorum\n", line: 1, err: "quorum line has 1 fields",
		spec: "quorum <name>"},
	{name: "quorum two names", in: "witness X1 {X1}\nwitness X2 {X2}\nquorum X1 X2\n", line: 3, err: "quorum line has 3 fields",
		spec: "quorum <name>"},
	{name: "quorum names a log", in: "log {L1}\nquorum example.com/log1\n", line: 2, err: "not a witness or group",
		spec: "the name refers to a witness ... the name can also refer to a witness group"},
}

func TestParse(t *testing.T) {
	k := keys(t)
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(k.expand(c.in)))
			if c.line == 0 {
				if err != nil {
					t.Fatalf("Parse refused a valid policy (spec: %s): %v", c.spec, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted an invalid policy (spec: %s):\n%s", c.spec, p)
			}
			t.Log(err)
			if !errors.Is(err, ErrMalformedPolicy) {
				t.Errorf("error %v does not wrap ErrMalformedPolicy", err)
			}
			if want := fmt.Sprintf("line %d: ", c.line); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %q does not say %q (spec: %s)", err, c.err, c.spec)
			}
		})
	}
}

func TestParseContents(t *testing.T) {
	k := keys(t)
	p, err := Parse([]byte(k.expand(xyExample)))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Quorum(); got != "X-and-Y" {
		t.Errorf("Quorum() = %q", got)
	}
	logs := p.Logs()
	if len(logs) != 1 || logs[0].Origin != "example.com/log1" || logs[0].VKey != k.l1.vkey || logs[0].URL != "" {
		t.Errorf("Logs() = %+v", logs)
	}
	if l, ok := p.Log("example.com/log1"); !ok || l.VKey != k.l1.vkey || l.Verifier.Name() != "example.com/log1" {
		t.Errorf("Log(example.com/log1) = %+v, %v", l, ok)
	}
	if _, ok := p.Log("example.com/log2"); ok {
		t.Error("Log(example.com/log2) found a log not in the policy")
	}
	var names []string
	for _, w := range p.Witnesses() {
		names = append(names, w.Name)
		if w.VKey != k.w[w.Name].vkey || w.Verifier.Name() != "witness.example/"+w.Name || w.Verifier.KeyHash() != k.w[w.Name].hash {
			t.Errorf("witness %s = %+v", w.Name, w)
		}
	}
	if want := []string{"X1", "X2", "X3", "Y1", "Y2", "Y3"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Witnesses() names = %q, want %q", names, want)
	}
	// The returned slices are copies: changing them does not change p.
	p.Witnesses()[0].Name = "changed"
	p.Logs()[0].Origin = "changed"
	if p.Witnesses()[0].Name != "X1" || p.Logs()[0].Origin != "example.com/log1" {
		t.Error("Logs or Witnesses returned the policy's own slice")
	}

	p, err = Parse([]byte(k.expand("log {L1} https://log.example/\nwitness W {X1} https://w.example/\nquorum none\n")))
	if err != nil {
		t.Fatal(err)
	}
	if p.Logs()[0].URL != "https://log.example/" || p.Witnesses()[0].URL != "https://w.example/" || p.Quorum() != "none" {
		t.Errorf("URLs or quorum lost: %+v %+v %q", p.Logs(), p.Witnesses(), p.Quorum())
	}
}

func TestParseLimits(t *testing.T) {
	var logs, wits, groups strings.Builder
	for i := range MaxLogs + 1 {
		fmt.Fprintf(&logs, "log %s\n", newLogKey(t, fmt.Sprintf("example.com/limit/%d", i)).vkey)
	}
	for i := range MaxWitnesses + 1 {
		fmt.Fprintf(&wits, "witness w%d %s\n", i, newWitnessKey(t, fmt.Sprintf("witness.example/limit/%d", i)).vkey)
	}
	for i := range MaxGroups + 1 {
		fmt.Fprintf(&groups, "group g%d any w%d\n", i, i%MaxWitnesses)
	}
	// firstN returns the first n lines of b.
	firstN := func(b *strings.Builder, n int) string {
		l := strings.SplitAfter(b.String(), "\n")
		return strings.Join(l[:n], "")
	}
	all := firstN(&logs, MaxLogs) + firstN(&wits, MaxWitnesses) + firstN(&groups, MaxGroups) + "quorum g0\n"
	if len(all) > MaxPolicySize {
		t.Fatalf("test policy at every limit is %d bytes, over MaxPolicySize", len(all))
	}
	if p, err := Parse([]byte(all)); err != nil {
		t.Errorf("policy at every limit refused: %v", err)
	} else if len(p.Logs()) != MaxLogs || len(p.Witnesses()) != MaxWitnesses {
		t.Errorf("policy at every limit: %d logs, %d witnesses", len(p.Logs()), len(p.Witnesses()))
	}
	lines := strings.Repeat("#\n", MaxLines-1) + "quorum none\n"
	if _, err := Parse([]byte(lines)); err != nil {
		t.Errorf("%d lines refused: %v", MaxLines, err)
	}
	size := strings.Repeat("#", MaxPolicySize-len("\nquorum none\n")) + "\nquorum none\n"
	if _, err := Parse([]byte(size)); err != nil {
		t.Errorf("%d bytes refused: %v", MaxPolicySize, err)
	}

	for _, c := range []struct {
		name, in, err string
	}{
		{"logs", logs.String() + "quorum none\n", fmt.Sprintf("line %d: more than %d logs", MaxLogs+1, MaxLogs)},
		{"witnesses", wits.String() + "quorum none\n", fmt.Sprintf("line %d: more than %d witnesses", MaxWitnesses+1, MaxWitnesses)},
		{"groups", firstN(&wits, MaxWitnesses) + groups.String() + "quorum none\n", fmt.Sprintf("line %d: more than %d groups", MaxWitnesses+MaxGroups+1, MaxGroups)},
		{"lines", "#\n" + lines, fmt.Sprintf("line %d: more than %d lines", MaxLines+1, MaxLines)},
		{"bytes", "#" + size, fmt.Sprintf("policy is %d bytes, limit %d", MaxPolicySize+1, MaxPolicySize)},
	} {
		_, err := Parse([]byte(c.in))
		if !errors.Is(err, ErrMalformedPolicy) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("over the %s limit: error %v, want %q", c.name, err, c.err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := keys(t)
	for _, c := range parseCases {
		if c.line != 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(k.expand(c.in)))
			if err != nil {
				t.Fatal(err)
			}
			s := p.String()
			q, err := Parse([]byte(s))
			if err != nil {
				t.Fatalf("Parse(String()) failed: %v\n%s", err, s)
			}
			if q.String() != s {
				t.Errorf("String() not stable:\n%s\nthen\n%s", s, q.String())
			}
			if !samePolicy(p, q) {
				t.Errorf("round trip changed the policy:\n%s", s)
			}
		})
	}

	// The canonical form: logs, witnesses, groups, quorum; single spaces;
	// no comments or blank lines; thresholds as written.
	in := "# c\n witness\tX1 {X1}  https://w/\nlog {L1}\n\ngroup  G  all X1\nwitness X2 {X2}\ngroup H 2 G X2\nquorum H\nlog {L2} https://l/\n"
	want := "log {L1}\nlog {L2} https://l/\nwitness X1 {X1} https://w/\nwitness X2 {X2}\ngroup G all X1\ngroup H 2 G X2\nquorum H\n"
	p, err := Parse([]byte(k.expand(in)))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != k.expand(want) {
		t.Errorf("String() =\n%s\nwant\n%s", got, k.expand(want))
	}
}

// samePolicy compares everything but the verifiers, which are rebuilt from
// the vkeys.
func samePolicy(p, q *Policy) bool {
	strip := func(p *Policy) ([]Log, []Witness) {
		ls, ws := p.Logs(), p.Witnesses()
		for i := range ls {
			ls[i].Verifier = nil
		}
		for i := range ws {
			ws[i].Verifier = nil
		}
		return ls, ws
	}
	pl, pw := strip(p)
	ql, qw := strip(q)
	return reflect.DeepEqual(pl, ql) && reflect.DeepEqual(pw, qw) &&
		reflect.DeepEqual(p.groups, q.groups) && p.quorum == q.quorum
}

func TestForLog(t *testing.T) {
	k := keys(t)
	p, err := ForLog(k.l1.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if want := "log " + k.l1.vkey + "\nquorum none\n"; p.String() != want {
		t.Errorf("String() = %q, want %q", p.String(), want)
	}
	if l, ok := p.Log("example.com/log1"); !ok || l.VKey != k.l1.vkey || p.Quorum() != "none" || len(p.Witnesses()) != 0 {
		t.Errorf("ForLog policy = %s", p)
	}
	cp, err := p.Verify(sign(t, body("example.com/log1", 7), k.l1.signer))
	if err != nil || cp.Size != 7 {
		t.Errorf("Verify = %+v, %v", cp, err)
	}
	for _, bad := range []string{k.w["X1"].vkey, "", "example.com/log1", k.l1.vkey + " https://x/", k.expand("{SHORT}"), " " + k.l1.vkey, k.l1.vkey + "\n", "a\x00b+00000000+AQ=="} {
		if _, err := ForLog(bad); !errors.Is(err, ErrMalformedPolicy) {
			t.Errorf("ForLog(%q) error = %v, want ErrMalformedPolicy", bad, err)
		}
	}
}

// TestFields checks the whitespace rule in isolation: only space and tab
// separate, any run of them counts once, and other octets are opaque.
func TestFields(t *testing.T) {
	for in, want := range map[string][]string{
		"":                        nil,
		" \t ":                    nil,
		"a":                       {"a"},
		" a\t\tb  c ":             {"a", "b", "c"},
		"a\xc2\xa0b\xe2\x80\x83c": {"a\xc2\xa0b\xe2\x80\x83c"},
		"\xff \x85":               {"\xff", "\x85"},
	} {
		if got := fields(in); !reflect.DeepEqual(got, want) {
			t.Errorf("fields(%q) = %q, want %q", in, got, want)
		}
	}
}
