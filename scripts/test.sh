#!/usr/bin/env bash
# The whole test suite: formatting, vet, unit and in-process tests, the
# fuzz targets on their seed corpus, and the network-namespace tests that run
# the real weft binary. Needs root and /dev/net/tun (under CI=true a missing
# capability fails the run instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

echo "==> gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
echo "==> go vet"
go vet ./...
# The race detector runs over every package but e2e: unit and fuzz-seed
# tests, the in-process simulations, and the lab, tunnel and CNI tests that
# build namespaces from inside the test process. e2e races only the real
# weft binary, which this would not instrument, and is the slow tier.
echo "==> go test -race (every package but e2e)"
race_pkgs=$(go list ./... | grep -v '^github.com/weftnet/weft/e2e$')
go test -count=1 -race -timeout 15m $race_pkgs
# Again without the race detector, e2e included: some assertions (zero
# allocations) are checked only in a normal build.
echo "==> go test (everything, including the network-namespace tests)"
go test -count=1 -timeout 20m ./...
