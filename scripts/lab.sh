#!/usr/bin/env bash
# The main job: builds weft and runs `weft lab` — 3 hosts in network
# namespaces with weft between them, traffic, status, teardown.
# Extra arguments go to `weft lab` (see `weft lab -h`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
echo "==> building bin/weft"
go build -o bin/weft ./cmd/weft
exec ./bin/weft lab "$@"
