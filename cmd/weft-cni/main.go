// Command weft-cni is weft's CNI plugin: the container runtime runs it from
// CNI_PATH (usually /opt/cni/bin) to give pods addresses from the node's
// weft subnet. All the work is in package cni; see docs/cni.md.
package main

import "github.com/weftnet/weft/cni"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	cni.Main("weft-cni " + version + ": pods on the weft overlay (delegates to the bridge and host-local plugins)")
}
