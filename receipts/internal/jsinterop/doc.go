// Package jsinterop runs the interoperability script of the receipts
// tests, testdata/interop/js/interop.mjs, with node and the npm packages
// pinned there (jose, @sd-jwt/core; .ci/run installs them with npm ci). It
// is test support only: the receipts packages' interop tests share it.
package jsinterop
