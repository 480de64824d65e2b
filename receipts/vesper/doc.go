// Package vesper issues, presents and verifies vesper tokens
// (draft-wendt-stir-vesper §6): SD-JWTs (RFC 9901) that a vetting agent
// issues about a vetted entity, carrying the transparency receipt of the
// agent's logged KYC/KYB digest.
//
// It is a thin layer over go-jose v4 (no maintained Go SD-JWT library is
// available): sdjwt.go holds the SD-JWT mechanics (disclosures, digests,
// decoys, recursive disclosures, processing, KB-JWT) and token.go the
// vesper profile.
//
// The token: issuer-signed JWT with typ "vesper+sd-jwt", ES256 or EdDSA,
// kid = the RFC 7638 thumbprint of the agent key that also signs its
// vetting-log statements. In the clear: iss, sub, iat, exp, kyc_data_hash
// (base64url SHA-256), transparency_receipt (a receipts JWS), _sd_alg
// "sha-256", and cnf.jwk when key binding is wanted. Persona claims are
// disclosable as a Frame says, per claim, per array element, nested, with
// decoys.
//
// Verify runs every check of RFC 9901 §7.1 and §7.3, then receipts.Verify
// on the receipt, then checks that the logged entry is this token's digest,
// logged and signed by this token's issuer key. Each failure wraps its own
// error (ErrDisclosure, ErrKeyBinding, ErrReceipt, ErrNotLogged, ...).
//
// Tests: vesper_test.go has a table row per rejection; TestIssueVerifyDraftExample
// uses the draft's example claim set; testdata/ holds golden vectors, and
// the interop tests check tokens with the npm packages jose and
// @sd-jwt/core, and tokens made by @sd-jwt/core with this package.
package vesper
