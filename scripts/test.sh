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
echo "==> go test -race (in-process packages)"
go test -count=1 -race -timeout 10m ./encap/... ./node/... ./udp/...
echo "==> go test (everything, including the network-namespace tests)"
go test -count=1 -timeout 20m ./...
