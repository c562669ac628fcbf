#!/usr/bin/env bash
# device-check.sh prepare|run — the measurements that need many cores, ready for
# the tool library's 16-core `device` machine (bare: no iproute2, iperf3 or
# ethtool; offline; about 15 minutes of it per session, starts included):
#   - issue #15's goals: one `weft bench` run, wire underlay, flows 1,4,8, with
#     wireguard-go beside weft (docs/performance.md, "Many cores");
#   - issue #13's 200-node cluster-size run (`weft bench --scale`).
#
#   here:    scripts/device-check.sh prepare   # builds .devkit: static weft,
#            # static wireguard-go, the tools with their libraries (needs
#            # ../shared/tools/device-kit.sh, or KIT=path)
#   there:   the device `run` tool with carry [".devkit"] and timeout_s 560:
#            scripts/device-check.sh run       # about 8 minutes; results in $OUT
#
# Each step writes its output under $OUT as it goes (line-buffered), so a
# timeout still returns what was measured. STEPS=cores or STEPS=scale runs one.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
	kit=${KIT:-../shared/tools/device-kit.sh}
	[ -x "$kit" ] || { echo "device-check: no device kit at $kit (set KIT)" >&2; exit 1; }
	exclude=$(git rev-parse --git-path info/exclude)
	mkdir -p "$(dirname "$exclude")"
	grep -qx '/.devkit/' "$exclude" 2>/dev/null || echo '/.devkit/' >>"$exclude"
	"$kit" .devkit
	wg_version=$(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
	(cd / && CGO_ENABLED=0 GOBIN=/tmp/device-wg go install -trimpath -ldflags '-s -w' "golang.zx2c4.com/wireguard@$wg_version")
	mv /tmp/device-wg/wireguard "$PWD/.devkit/bin/wireguard-go"
	du -sh .devkit
	;;
run)
	export PATH=$PWD/.devkit/bin:$PATH
	out=${OUT:-/tmp/device-check}
	mkdir -p "$out"
	nproc >"$out/nproc"
	steps=${STEPS:-cores,scale}
	if [[ ,$steps, == *,cores,* ]]; then
		timeout 330 weft bench --underlay wire --flows 1,4,8 --paths vxlan,weft,weft-insecure,wireguard-go \
			--repeat 1 --seconds 4 --json "$out/cores.json" --chart "$out/cores.svg" 2>&1 |
			grep --line-buffered -v '^$' | tee "$out/cores.txt" || true
	fi
	if [[ ,$steps, == *,scale,* ]]; then
		timeout 200 weft bench --scale 200 --json "$out/scale.json" 2>&1 |
			grep --line-buffered -v '^$' | tee "$out/scale.txt" || true
	fi
	;;
*)
	echo "usage: scripts/device-check.sh prepare|run" >&2
	exit 2
	;;
esac
