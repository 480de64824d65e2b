// Command vesper is vesperlog's command line for everyone but the log's
// server: vetting agents (keygen, kyc-hash, submit, agent, token issue),
// token holders (token present), verifiers (trust, verify-receipt, token
// verify, checkpoint, proof), auditors and monitors (audit, monitor,
// compare, check-evidence), operators of a posix log (agents add,
// revoke, limit), and the STIR call path: an authentication service
// (passport sign), a verification service (passport verify), and a TEST
// certification authority issuing delegate certificates (ca delegate).
//
// Every command reads "vesper COMMAND [VERB] -flags args" (package
// cmd/internal/cli): "vesper -h" lists the commands, and "vesper COMMAND -h"
// prints a command's synopsis and all its flags. Every failure is one line
// on standard error and a non-zero exit: 1 when something was checked and
// failed or the server refused, 2 for usage.
package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
)

// logFlagsSynopsis is the synopsis of the flags logFlags registers, less
// the required -trust.
const logFlagsSynopsis = "[-log vetting|stict] [-url URL | -dir DIR]"

// program is vesper's commands, in the order vesper -h lists them.
var program = &cli.Program{Name: "vesper", Commands: []*cli.Command{
	{Name: "keygen agent", Synopsis: "-out FILE [-alg ES256|EdDSA]",
		Summary: "make a vetting agent's signing key pair",
		Description: "Writes a new private JWK to FILE (mode 0600) and its public key beside it as NAME.pub.jwk, " +
			"and prints the key's thumbprint. Give the public key to the log operator (vesper agents add). " +
			"Refuses to overwrite an existing key.",
		Flags: func(fs *flag.FlagSet) cli.Action { return keygenFlags(fs, "agent") }},
	{Name: "keygen holder", Synopsis: "-out FILE [-alg ES256|EdDSA]",
		Summary: "make a token holder's key pair, for key binding",
		Description: "Writes a new private JWK to FILE (mode 0600) and its public key beside it as NAME.pub.jwk. " +
			"Give the public key to the vetting agent, which binds tokens to it (token issue -holder-key).",
		Flags: func(fs *flag.FlagSet) cli.Action { return keygenFlags(fs, "holder") }},
	{Name: "agents add", Synopsis: "-agents FILE -name NAME -key PUBLIC.jwk [-iss ISSUER] [-create]",
		Summary: "register a vetting agent in a posix log's agent registry",
		Description: "Adds an agent's public key to the registry FILE (a posix log's <data>/agents.json, which the " +
			"server reads again on every submission). FILE must exist unless -create is given, so that a mistyped " +
			"path is not a new, unused registry. With other backends, edit a copy and load it with vesperlog agents put.",
		Flags: agentsAddFlags},
	{Name: "agents revoke", Synopsis: "-agents FILE -name NAME -reason TEXT [-at RFC3339]",
		Summary: "revoke a vetting agent, from a time and for a reason",
		Description: "Records the revocation on the agent in the registry FILE; its key stays listed, so that its " +
			"entries logged before the time still verify (and verifiers show the revocation), and it cannot be " +
			"registered again. The log refuses the agent's statements from the time on (403). A revocation can " +
			"later be moved earlier, never later. With other backends, edit a copy and load it with vesperlog agents put.",
		Flags: agentsRevokeFlags},
	{Name: "agents limit", Synopsis: "-agents FILE [-name NAME] (-rate PER_SECOND -burst N | -clear)",
		Summary: "set the rate limit of an agent, or the default",
		Description: "Sets how many statements an agent may log (each statement of a batch counts): -rate a second " +
			"on average, up to -burst at once; without -name, the default of agents without a rate of their own. " +
			"No rate at all means no limit. Each front end counts on its own, and applies a change at the agent's " +
			"next submission. Over the limit, the log answers 429 with Retry-After.",
		Flags: agentsLimitFlags},
	{Name: "kyc-hash", Synopsis: "-in KYC.json (-out COMMITMENT.json | -salt B64URL)",
		Summary: "commit to a KYC record: the salted digest an agent logs",
		Description: "Prints SHA-256(salt || the file's bytes), base64url. With -out, the salt is 32 new random bytes " +
			"and the commitment (digest and salt) is kept in COMMITMENT.json, mode 0600: the salt stays with the agent. " +
			"With -salt, the digest is recomputed from a salt already used.",
		Flags: kycHashFlags},
	{Name: "submit", Synopsis: "-key AGENT.jwk (-commitment FILE | -digest B64URL | -digests FILE) [-sub SUBJECT] [-out RECEIPT] [-json] [-server URL]",
		Summary: "sign and log digests, and get their receipts",
		Description: "Signs one statement per digest with the agent's key and sends them to the vetting log " +
			"(in batches of 1,000 for -digests), printing each digest's index; -out keeps the receipt of a single digest. " +
			"Exits 1 if any digest was refused.",
		Flags: submitFlags},
	{Name: "trust", Synopsis: "-out TRUST.json [-server URL]",
		Summary: "fetch and pin a server's transparency configuration",
		Description: "Fetches /.well-known/transparency-configuration (the logs, their vkeys, the witness policy " +
			"and the receipt keys), writes it to TRUST.json and prints what it pinned. Compare the vkeys with what " +
			"the operator publishes: every other command trusts this file.",
		Flags: trustFlags},
	{Name: "verify-receipt", Synopsis: "(-trust TRUST.json | -log-vkey VKEY -jwks JWKS.json [-policy POLICY]) [-agents AGENTS.json] [-digest B64URL] [-json] RECEIPT|-",
		Summary: "verify a receipt offline",
		Description: "Verifies a receipt (a file, or - for standard input) against a pinned trust document, or " +
			"against a log vkey, a JWKS of receipt keys and an optional tlog-policy. It checks the receipt's " +
			"signature, the checkpoint's signatures and witness quorum, and the entry's inclusion; -agents also " +
			"checks the agent's own signature, and -digest that the entry logs that digest.",
		Flags: verifyReceiptFlags},
	{Name: "passport sign", Synopsis: "-key DELEGATE.key -chain DELEGATE.pem [-x5u URL] [-no-x5c] (-orig TN | -orig-uri URI) (-dest TN[,TN…] | -dest-uri URI) [-iat UNIX] [-ppt shaken|rcd|rsp] [-attest A|B|C] [-origid UUID|auto] [-rcd RCD.json] [-identity [-info URL]] [-out FILE]",
		Summary: "sign a call's PASSporT with a delegate certificate",
		Description: "An authentication service (RFC 8224 §5): signs a PASSporT (RFC 8225) with ES256, its payload in " +
			"RFC 8225 §9 form and the delegate certificate's chain in x5c; SHAKEN (RFC 8588) with -attest, rcd (RFC 9795) " +
			"with -rcd, and the rsp PASSporT of the called party (draft-ietf-stir-rfc4916-update) with -ppt rsp. " +
			"Prints the token, or with -identity a SIP Identity header value.",
		Flags: passportSignFlags},
	{Name: "passport verify", Synopsis: "-trust TRUST.json [-freshness 60s] [-now RFC3339] [-original PASSPORT.jwt] [-disclose DISCLOSE.json] [-require-commitments] [-spc-numbers SPC.json] [-online] [-fetch-x5u] [-json] PASSPORT|IDENTITY|-",
		Summary: "verify a PASSporT down to the STI-CT log",
		Description: "A verification service (RFC 8224 §6): checks the header, the signature by the x5c leaf, freshness, " +
			"the chain to the pinned STI roots, the TNAuthList's authorization of the number, the certificate's claim " +
			"constraints, and its embedded SCTs from the pinned STI-CT logs; -online also proves each SCT's entry in a " +
			"witnessed checkpoint (for audits, not per call). Prints one line per check; exits 1 naming the failed check.",
		Flags: passportVerifyFlags},
	{Name: "ca delegate", Synopsis: "-pki DIR -log URL [-log URL…] [-tn N | -range START,COUNT] [-rcd RCD.json -mode value|hash|commit] -out DIR",
		Summary: "issue a delegate certificate with embedded SCTs (a TEST CA)",
		Description: "A TEST certification authority, for trying the STIR flow: the intermediate CA of a test PKI " +
			"directory (testdata/sti-pki, keys in the clear) issues a short-lived delegate certificate whose precertificate " +
			"it logs in each STI-CT log (add-pre-chain), embedding their SCTs; -rcd adds claim constraints requiring the " +
			"rcd claim, in the clear, hashed or committed. Not for production certificates.",
		Flags: caDelegateFlags},
	{Name: "agent enroll", Synopsis: "-entities DIR -id ID (-commitment FILE | -kyc-data-hash B64URL) [-claims C.json] [-frame F.json]",
		Summary: "enroll an entity with a vetting agent's token service",
		Description: "Writes the entity's record into the agent's directory DIR and prints the bearer token the " +
			"entity fetches its vesper tokens with (agent serve).",
		Flags: agentEnrollFlags},
	{Name: "agent serve", Synopsis: "-key AGENT.jwk -iss ISS -entities DIR -trust TRUST.json [-addr ADDR] [-server URL] [-lifetime D]",
		Summary: "run a vetting agent's token service",
		Description: "Serves vesper tokens to enrolled entities: each token carries the receipt of the entity's " +
			"logged digest, fetched from the vesperlog server and checked against TRUST.json.",
		Flags: agentServeFlags},
	{Name: "token issue", Synopsis: "-key AGENT.jwk -iss ISS -sub SUB -receipt RECEIPT (-commitment FILE | -kyc-data-hash B64URL) [-claims C.json] [-frame F.json] [-holder-key H.pub.jwk] [-lifetime D] [-out FILE]",
		Summary: "issue a vesper token (SD-JWT) carrying a receipt",
		Description: "Signs an SD-JWT about the entity SUB with the agent's key, carrying the logged digest and " +
			"its receipt; -claims adds persona claims, -frame makes some selectively disclosable, and -holder-key " +
			"binds the token to the holder's key.",
		Flags: tokenIssueFlags},
	{Name: "token present", Synopsis: "-token FILE [-disclose a,b | -list] [-holder-key H.jwk -aud A -nonce N] [-out FILE]",
		Summary: "present a token, disclosing chosen claims",
		Description: "Prints a presentation of the token that discloses the claims named by -disclose (none by " +
			"default); -list prints the claims that can be disclosed. With -holder-key it adds a key-binding JWT for " +
			"the verifier's -aud and -nonce.",
		Flags: tokenPresentFlags},
	{Name: "token verify", Synopsis: "-trust TRUST.json -issuers AGENTS.json [-aud A -nonce N] [-json] TOKEN|-",
		Summary: "verify a token or presentation offline",
		Description: "Verifies the token's signature by a registered agent, its disclosures, its receipt against " +
			"the pinned trust, and with -aud and -nonce its key binding; prints the checks and the claims.",
		Flags: tokenVerifyFlags},
	{Name: "checkpoint", Synopsis: "-trust TRUST.json " + logFlagsSynopsis + " [-state DIR] [-evidence FILE]",
		Summary: "fetch and verify a log's checkpoint",
		Description: "Fetches the log's checkpoint and verifies its signatures and witness quorum. With -state it " +
			"also proves the new checkpoint consistent with the one trusted before and keeps it; an inconsistent " +
			"one is written as evidence.",
		Flags: checkpointFlags},
	{Name: "proof inclusion", Synopsis: "-trust TRUST.json (-index N | -leaf-hash B64) " + logFlagsSynopsis,
		Summary: "prove an entry is in a log",
		Description: "Verifies and prints the inclusion proof of an entry, named by index or RFC 6962 leaf hash, " +
			"in the log's current verified checkpoint.",
		Flags: func(fs *flag.FlagSet) cli.Action { return proofFlags(fs, "inclusion") }},
	{Name: "proof consistency", Synopsis: "-trust TRUST.json -old M [-new N] " + logFlagsSynopsis,
		Summary: "prove one tree size is a prefix of another",
		Description: "Verifies and prints the consistency proof between tree sizes M and N (default: the size of " +
			"the log's current verified checkpoint).",
		Flags: func(fs *flag.FlagSet) cli.Action { return proofFlags(fs, "consistency") }},
	{Name: "audit", Synopsis: "-trust TRUST.json " + logFlagsSynopsis + " [-agents AGENTS.json | -roots ROOTS.pem] [-resume FILE] [-state DIR] [-workers N] [-evidence FILE]",
		Summary: "check every entry of a log",
		Description: "Reads the whole log up to a verified checkpoint, recomputes its root, and checks every entry: " +
			"that it decodes, with -agents that each vetting statement verifies with its agent's key and was logged " +
			"before any revocation of the agent, and for the " +
			"STI-CT log that each chain verifies to the STI roots. -resume continues where an earlier audit stopped.",
		Flags: auditFlags},
	{Name: "monitor", Synopsis: "-trust TRUST.json -state DIR " + logFlagsSynopsis + " [-agent THUMBPRINT] [-tn NUMBER] [-tn-range START,COUNT] [-spc CODE] [-once | -interval D] [-evidence FILE]",
		Summary: "follow a log and print new entries",
		Description: "Moves the trusted checkpoint in DIR forward, only to consistent checkpoints, and prints each " +
			"new entry as a JSON line, optionally only those of one agent (vetting log) or of telephone numbers and " +
			"SPCs (STI-CT log). It runs until stopped, or once with -once.",
		Flags: monitorFlags},
	{Name: "compare", Synopsis: "-trust TRUST.json -witness URL " + logFlagsSynopsis + " [-evidence FILE]",
		Summary: "compare a log's checkpoint with a witness's",
		Description: "Fetches the checkpoint a witness last cosigned for the log and proves it consistent with the " +
			"log's own; a split view is written as evidence.",
		Flags: compareFlags},
	{Name: "check-evidence", Synopsis: "-log-vkey VKEY EVIDENCE.json",
		Summary: "check evidence of a log's misbehaviour",
		Description: "Checks evidence written by checkpoint, audit, monitor or compare against the log's vkey, " +
			"and says whether it is conclusive on its own.",
		Flags: checkEvidenceFlags},
}}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Run(ctx, args, stdout, stderr)
}

// usageErr is a command line that cannot run (exit 2).
func usageErr(format string, a ...any) error { return cli.Usagef(format, a...) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
