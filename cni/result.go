package cni

import (
	"encoding/json"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// resultAddrs returns the addresses in a result of any version.
func resultAddrs(res types.Result) []netip.Prefix {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, ip := range r.IPs {
		a, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		ones, _ := ip.Address.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), ones))
	}
	return out
}

// marshalResult encodes a result for a delegate's prevResult.
func marshalResult(res types.Result) (json.RawMessage, error) {
	return json.Marshal(res)
}
