#!/usr/bin/env bash
# Fuzz every Go fuzz target of the module (every FuzzXxx in a _test.go file) for
# FUZZTIME each, one after the other: `go test -fuzz` takes one target at a time.
# `go test` (make test) already runs each target's seed corpus; this searches
# beyond it. An input that fails is written to the package's testdata/fuzz/ and
# the script stops with go test's report; commit that file, fix the bug, and the
# input stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

# The targets are found in the sources, not with `go test -list`, which would run
# each package's TestMain (some start a control plane).
found=0
while IFS=: read -r file target; do
	pkg=./$(dirname "$file")
	found=$((found + 1))
	printf '=== fuzz %s %s for %s\n' "$pkg" "$target" "$FUZZTIME"
	$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
done < <(git grep -E -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' ':!pkg/atlantis' | sed 's/func //')
if [ "$found" -eq 0 ]; then
	echo "no fuzz target found" >&2
	exit 1
fi
echo "fuzzed $found targets for $FUZZTIME each"
