// Package load is vesperload's engine: it drives a log's submission API at
// a fixed rate (open loop, with a bound on requests in flight; a request
// the bound would have queued is counted as dropped, never queued) or with
// a fixed number of requests in flight (closed loop), and reports what the
// log held: entries per second, a latency histogram (p50, p90, p99, max),
// answers by HTTP status and problem type, and the receipts it verified.
//
// Three targets: a vesperlog vetting log (statements pre-signed by test
// agent keys, to /vetting/v1/add or /vetting/v1/add-batch; a share of the
// receipts verified offline with package receipts against the log's trust
// document); a Tessera-style "POST /add" (raw: opaque entries, latency
// measured to the first checkpoint whose size covers the entry), so that
// the same tool measures vesperlog and bare Tessera side by side (issue
// 15); and any RFC 6962 log's add-chain (ct: chains the caller issues
// before the run, latency to the SCT), so that it measures vesperlog's
// STI-CT log and another static-ct-api server on the same certificates.
//
// It is verifier-side code: it imports the client, the receipt verifier and
// the vetting formats, never the server (receipts/deps_test.go).
package load
