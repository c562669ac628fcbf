package cni

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// The CNI error codes weft-cni answers with (SPEC.md, "Error"). docs/cni.md
// lists them for operators; keep the two in step.
//
//	1   cniVersion not supported (by weft-cni, or by every delegate version)
//	3   CHECK of a container weft-cni never added (no saved delegate config)
//	5   the data dir cannot be written or read
//	7   invalid network config: bad key or value, relative path, malformed
//	    subnet file, delegate plugin binary not found in CNI_PATH
//	11  ADD while the weft agent is not running (no subnet file, or one
//	    whose agent does not answer on weft.sock or holds another subnet):
//	    try again
//	50  STATUS: the agent is not running or not answering, or a delegate
//	    plugin is missing
//
// Errors from the delegate plugin keep the delegate's code; their message
// names the delegate. skel itself answers 4 (missing CNI_ variables) and 6
// (stdin is not JSON).

// errConfig is code 7, invalid network configuration.
func errConfig(format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "weft-cni: invalid network config: "+fmt.Sprintf(format, a...), "")
}

// errNoAgent is code 11: ADD cannot go on until the agent has written the
// subnet file, which the runtime should retry.
func errNoAgent(subnetFile string) *types.Error {
	return types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("weft-cni: the weft agent is not running on this node (%s does not exist); try again later", subnetFile),
		"the agent (weft up, or the weft DaemonSet pod) writes this file once it holds a subnet; check that it runs with --run-dir "+dirOf(subnetFile))
}

// errAgentDown is code 11 too: the subnet file is there but no live agent
// stands behind it (err wraps api.ErrStaleSubnetFile and says why).
func errAgentDown(err error) *types.Error {
	return types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("weft-cni: the weft agent is not running on this node: %v; try again later", err),
		"the agent (weft up, or the weft DaemonSet pod) rewrites the file when it starts again")
}

// errIO is code 5, for the data dir.
func errIO(what string, err error) *types.Error {
	return types.NewError(types.ErrIOFailure, fmt.Sprintf("weft-cni: %s: %v", what, err), "")
}

// errDelegate wraps a delegate plugin's failure, keeping its code (999 if it
// returned no CNI error) and saying which plugin and command failed.
func errDelegate(plugin, cmd string, err error) *types.Error {
	var e *types.Error
	if errors.As(err, &e) && strings.HasPrefix(e.Msg, "weft-cni:") {
		return e // ours already (a delegate not found), not the delegate's
	}
	if errors.As(err, &e) {
		return types.NewError(e.Code, fmt.Sprintf("weft-cni: delegate %s %s: %s", plugin, cmd, e.Msg), e.Details)
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("weft-cni: delegate %s %s: %v", plugin, cmd, err), "")
}

// errNotAvailable is STATUS's code 50.
func errNotAvailable(format string, a ...any) *types.Error {
	return types.NewError(types.ErrPluginNotAvailable, "weft-cni: not ready: "+fmt.Sprintf(format, a...), "")
}
