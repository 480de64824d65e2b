// Package client is what submitters, verifiers, auditors and monitors run
// against a vesperlog. Vetting submits statements and fetches receipts;
// FetchConfiguration fetches the transparency configuration a verifier
// pins. Log reads either log (tlog-tiles, or static-ct-api for the STI-CT
// log) over HTTP or from a directory: it verifies checkpoints against the
// pinned policy, proves inclusion and consistency, lists and audits
// entries (Audit; ChainChecker for STI-CT chains), keeps a trusted
// checkpoint that only moves to consistent ones (Update), compares it with
// a witness's (CompareWith), and writes and checks Evidence of a log's
// misbehaviour. SCTProver proves online that a certificate's SCT names an
// entry of its STI-CT log (for receipts/passport's online check). HTTP
// reads decode gzip whether or not they asked for it (static-ct-api
// v1.1.0). Every answer it returns is checked, or is only a claim to
// be checked (receipts go through receipts.Verify).
//
// It imports no server code.
package client
