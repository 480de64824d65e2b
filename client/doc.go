// Package client is what verifiers, auditors and submitters run against a
// vesperlog: it submits vetting statements and fetches receipts and the
// transparency configuration. Every answer it returns is checked or is
// only a claim to be checked (receipts go through receipts.Verify).
//
// It imports no server code.
package client
