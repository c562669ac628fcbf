#!/usr/bin/env bash
# Installs what weft's lab and tests need on a fresh Debian machine (run as
# root): network tools from apt, Go modules from the module proxy. Quiet
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in ip:iproute2 ping:iputils-ping iperf3:iperf3 ethtool:ethtool nft:nftables tcpdump:tcpdump unshare:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# weft-cni's tests delegate to Debian's reference CNI plugins (/usr/lib/cni).
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1; then
  export PATH="$PATH:/usr/local/go/bin"
fi
go mod download

# weft-cni's tests also run cnitool and the current reference plugins, built
# from the Go module proxy into $WEFT_CNI_TOOLS (cni/cnitest/tools.go reads
# the same place). Versions: cnitool matches go.mod's containernetworking/cni.
cni_tools=${WEFT_CNI_TOOLS:-/opt/weft-test/cni}
cnitool_version=v1.3.1
cni_plugins_version=v1.10.0
if [ ! -x "$cni_tools/bin/cnitool" ]; then
  echo "==> building cnitool $cnitool_version into $cni_tools/bin"
  (cd / && GOBIN="$cni_tools/bin" go install "github.com/containernetworking/cni/cnitool@$cnitool_version")
fi
plugins_dir="$cni_tools/plugins-$cni_plugins_version"
if [ ! -x "$plugins_dir/bridge" ] || [ ! -x "$plugins_dir/host-local" ]; then
  echo "==> building CNI plugins $cni_plugins_version (bridge, host-local) into $plugins_dir"
  (cd / && GOBIN="$plugins_dir" go install \
    "github.com/containernetworking/plugins/plugins/main/bridge@$cni_plugins_version" \
    "github.com/containernetworking/plugins/plugins/ipam/host-local@$cni_plugins_version")
fi
