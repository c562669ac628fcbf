#!/usr/bin/env bash
# Builds weft's container image with no registry: static binaries built here
# (CGO_ENABLED=0), laid FROM scratch by deploy/Dockerfile.scratch. The image
# holds what deploy/Dockerfile's does: weft and weft-cni in /usr/bin, the
# reference CNI plugins bridge, host-local, loopback and portmap in
# /opt/weft/cni-plugins, plus a static busybox as sh, cp, mv and basename for
# the DaemonSet's install step.
#
#   scripts/image.sh [TAG]             # default localhost/weft:dev
#
# The plugins are built from the Go module proxy at the version
# deploy/Dockerfile uses; WEFT_CNI_PLUGINS_DIR=/usr/lib/cni takes them from a
# directory instead (Debian's containernetworking-plugins, fully offline).
# WEFT_IMAGE_TOOL picks the builder (default podman; docker works too).
# busybox comes from Debian's busybox-static (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

tag=${1:-localhost/weft:dev}
tool=${WEFT_IMAGE_TOOL:-podman}
cni_plugins_version=v1.10.0 # as deploy/Dockerfile's CNI_PLUGINS_VERSION
plugins=(bridge host-local loopback portmap)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin" "$ctx/cni-plugins"

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
echo "==> building weft and weft-cni $version (static)"
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version" -o "$ctx/bin/" ./cmd/weft ./cmd/weft-cni

if [ -n "${WEFT_CNI_PLUGINS_DIR:-}" ]; then
  echo "==> CNI plugins from $WEFT_CNI_PLUGINS_DIR"
  for p in "${plugins[@]}"; do
    cp "$WEFT_CNI_PLUGINS_DIR/$p" "$ctx/cni-plugins/"
  done
else
  echo "==> building CNI plugins $cni_plugins_version (static)"
  pkgs=()
  for p in "${plugins[@]}"; do
    case $p in
      host-local) pkgs+=("github.com/containernetworking/plugins/plugins/ipam/$p@$cni_plugins_version") ;;
      portmap) pkgs+=("github.com/containernetworking/plugins/plugins/meta/$p@$cni_plugins_version") ;;
      *) pkgs+=("github.com/containernetworking/plugins/plugins/main/$p@$cni_plugins_version") ;;
    esac
  done
  (cd / && CGO_ENABLED=0 GOBIN="$ctx/cni-plugins" go install -trimpath "${pkgs[@]}")
fi

busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || [[ "$(ldd "$busybox" 2>&1 || true)" != *"not a dynamic executable"* ]]; then
  echo "scripts/image.sh: needs a static busybox (apt-get install busybox-static, or run scripts/setup.sh)" >&2
  exit 1
fi
cp "$busybox" "$ctx/bin/busybox"
for applet in sh cp mv basename; do
  ln -s busybox "$ctx/bin/$applet"
done

echo "==> $tool build -t $tag"
"$tool" build --pull=never -f deploy/Dockerfile.scratch -t "$tag" "$ctx"
