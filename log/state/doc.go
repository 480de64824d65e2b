// Package state keeps what a vesperlog deployment shares beside Tessera's
// tiles, in its storage backend's State, so that every front end on one
// backend sees the same:
//
//   - the vetting agent registry (agents.json), reloaded as it changes;
//   - each log's binding (log-<name>.json): its origin and checkpoint
//     verifier key, fixed on the first start, so that a front end given
//     another key refuses to start rather than sign the log's
//     checkpoints with it (a second checkpoint key, such as the STI-CT
//     log's note key, has a binding of its own, log-stict-note.json);
//   - the receipt key history (receipt-keys.json): the public key of
//     every receipt signer that ever served, never deleted, so that a
//     receipt from any front end verifies against any front end's JWKS.
//     Each key carries its validity window (receipts.KeySet: nbf when it
//     was added, exp once vesperlog keys rotate-receipt retired it); a
//     front end refuses to start, or sign, with a retired key.
//
// Documents are JSON. Writes go through the State's compare-and-swap, so
// front ends starting together do not lose each other's keys.
package state
