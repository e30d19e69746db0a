// Package docs holds tests of the repository's Markdown documentation.
//
// The documents link to each other's sections by GitHub's heading anchors, and a
// heading renamed or a section moved to another file breaks such a link without any
// build noticing; links_test.go reads README.md, docs/ and the charts' READMEs and
// fails on every relative link whose file or heading is missing. The tests live in
// _test.go files; this file only names the package.
package docs
