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

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# corpus lists the inputs saved for a target, one per line.
corpus() { ls "$1/testdata/fuzz/$2" 2>/dev/null || true; }

# The targets are found in the sources, not with `go test -list`, which would run
# each package's TestMain (some start a control plane).
found=0
spurious=0
while IFS=: read -r file target; do
	dir=$(dirname "$file")
	found=$((found + 1))
	printf '=== fuzz ./%s %s for %s\n' "$dir" "$target" "$FUZZTIME"
	before=$(corpus "$dir" "$target")
	if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1 | tee "$out"; then
		continue
	fi
	# Go 1.26's fuzz coordinator can fail a run whose -fuzztime ran out while a
	# worker was mid-input, with "context deadline exceeded" and no failing input
	# (golang/go#75804, fixed in Go 1.27). A real finding always writes its input
	# to testdata/fuzz/; only a failure without one that says exactly that is
	# taken for the coordinator's.
	if [ "$(corpus "$dir" "$target")" = "$before" ] && grep -qx '    context deadline exceeded' "$out" &&
		! grep -q 'Failing input written' "$out"; then
		echo "--- $target: \"context deadline exceeded\" at the end of -fuzztime without a failing input: Go's fuzz coordinator (golang/go#75804), not a finding"
		spurious=$((spurious + 1))
		continue
	fi
	echo "--- $target failed; see above (a failing input is in ./$dir/testdata/fuzz/$target/)" >&2
	exit 1
done < <(git grep -E -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' ':!pkg/atlantis' | sed 's/func //')
if [ "$found" -eq 0 ]; then
	echo "no fuzz target found" >&2
	exit 1
fi
echo "fuzzed $found targets for $FUZZTIME each ($spurious ended by golang/go#75804 without a finding)"
