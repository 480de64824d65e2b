// Package status renders vesperlog's status page: a server-rendered HTML
// page (html/template, no scripts, no external assets) that shows, for each
// log, its origin, keys, size and checkpoint age, each witness of its
// policy with its last answer and its cosignature on the current
// checkpoint, and the latest entries decoded; and that searches the logs
// by entry index, vetting digest (across the registered agents), STI-CT
// leaf hash (the leaf-hash index) or telephone number.
//
// Every request reads a bounded amount of the log: the checkpoint, the
// one or two entry bundles that hold the latest LatestEntries entries, one
// bundle per search hit, and for a telephone number the bundles of the
// latest TNScanEntries STI-CT entries, one at a time (there is no
// telephone-number index; the page says how far it searched). The page
// is server-side code: verifiers never import it.
//
// The package's tests check what the page shows and how much it reads
// against an in-memory log; TestStatusPageHTTP and TestStatusPageBrowser
// (cmd/vesperlog) check it on the real binary, the latter in headless
// Chromium.
package status
