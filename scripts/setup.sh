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
# The image test (e2e/image_test.go) builds deploy/Dockerfile.scratch with
# Podman (runc: crun refuses hybrid cgroup hosts) and a static busybox.
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
[[ "$(ldd "$(command -v busybox || echo /nonexistent)" 2>&1 || true)" == *"not a dynamic executable"* ]] || need+=(busybox-static)
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

# weft bench compares weft with wireguard-go, the userspace WireGuard, built
# from the module proxy at the version go.mod pins for its TUN library into
# $WEFT_WIREGUARD_GO (bench/wireguard.go looks there and in PATH). The bench
# configures it over its UAPI socket: neither the wg tool nor the kernel
# module is needed.
wg_dir=${WEFT_WIREGUARD_GO:-/opt/weft-test/wireguard-go}
wg_version=$(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
if [ "$(cat "$wg_dir/VERSION" 2>/dev/null)" != "$wg_version" ]; then
  echo "==> building wireguard-go $wg_version into $wg_dir"
  mkdir -p "$wg_dir"
  (cd / && GOBIN="$wg_dir" go install "golang.zx2c4.com/wireguard@$wg_version")
  mv "$wg_dir/wireguard" "$wg_dir/wireguard-go"
  echo "$wg_version" >"$wg_dir/VERSION"
fi

# The Kubernetes tier (e2e/kube_test.go) runs a real control plane: Debian's
# etcd (3.4 works with kube-apiserver 1.34) and kube-apiserver,
# kube-controller-manager and kubectl built from k8s.io/kubernetes through the
# module proxy into $WEFT_K8S_TOOLS (lab/kube.go reads the same place). The
# build takes ~10 minutes on 2 cores, so it runs once; later runs find the
# stamp and say nothing. k8s.io/kubernetes requires its staging modules at
# v0.0.0, so a throwaway module replaces each with the matching v0.34.x.
command -v etcd >/dev/null 2>&1 || {
  echo "==> installing etcd-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  # The package starts a system etcd on 127.0.0.1:2379; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
}
k8s_tools=${WEFT_K8S_TOOLS:-/opt/weft-test/k8s}
k8s_version=v1.34.4
if [ "$(cat "$k8s_tools/VERSION" 2>/dev/null)" != "$k8s_version" ]; then
  echo "==> building kube-apiserver, kube-controller-manager, kubectl $k8s_version into $k8s_tools (~10 min, once)"
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  staging=v0.${k8s_version#v1.}
  (
    cd "$build"
    go mod init weft-k8s-tools >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$k8s_version"
    mod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$mod" | sort -u); do
      go mod edit -replace="$m=$m@$staging"
    done
    minor=$(echo "$k8s_version" | cut -d. -f2)
    v=k8s.io/component-base/version
    ldflags="-s -w -X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=$minor"
    mkdir -p "$k8s_tools/bin"
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags="$ldflags" -o "$k8s_tools/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl
  )
  echo "$k8s_version" >"$k8s_tools/VERSION"
fi
