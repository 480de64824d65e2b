// Package server runs the vetting log: it checks each agent statement (a
// registered key, a valid signature, a fresh iat), turns it into a leaf
// stamped with the log's time, appends it through package log (which
// deduplicates by agent and digest), and answers with a receipt once a
// published checkpoint covers the entry.
//
// A request's path: handler (decode, bound the size) → Service.Submit →
// log.Add (Tessera) → receipts.Signer → encode. Every statement of a batch
// is checked before any is appended, so bad input never changes the log.
//
// HTTP API (all errors are RFC 9457 application/problem+json):
//
//	POST /vetting/v1/add              body: one statement JWS (application/jose)
//	POST /vetting/v1/add-batch        body: {"statements": [JWS, ...]} (application/json), at most 1,000
//	GET  /vetting/v1/receipt/{index}  a fresh receipt against the latest checkpoint
//	GET  /vetting/v1/lookup/{agent}/{digest}
//	                                  the index of a digest an agent logged (both base64url)
//	GET  /vetting/v1/agents           the registered agents' public keys
package server
