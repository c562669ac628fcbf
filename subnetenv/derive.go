package subnetenv

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// A dual-stack node's IPv6 subnet is not leased on its own: it is derived
// from the IPv4 one. The IPv4 subnet is the i-th subnet of its size inside
// the IPv4 network; the IPv6 subnet is the i-th /len6 inside the IPv6
// network. Distinct IPv4 leases of one size so give distinct IPv6 subnets,
// and gossip needs no second lease table.

// Subnet6 is the IPv6 subnet of length len6 inside network6 that goes with
// the IPv4 subnet inside network. It fails when network6 holds too few
// subnets of length len6 for subnet's index.
func Subnet6(network, subnet, network6 netip.Prefix, len6 int) (netip.Prefix, error) {
	if !network.Contains(subnet.Addr()) || subnet.Bits() < network.Bits() || !subnet.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("subnet %s is not inside the IPv4 network %s", subnet, network)
	}
	if !network6.Addr().Is6() || len6 < network6.Bits() || len6 > 128 {
		return netip.Prefix{}, fmt.Errorf("IPv6 subnets /%d do not fit the IPv6 network %s", len6, network6)
	}
	off := be4(subnet.Masked().Addr()) - be4(network.Masked().Addr())
	index := off >> (32 - subnet.Bits())
	if len6-network6.Bits() < 32 && uint64(index) >= 1<<(len6-network6.Bits()) {
		return netip.Prefix{}, fmt.Errorf("the IPv6 network %s holds %d subnets of /%d, too few for %s, subnet number %d of %s", network6, uint64(1)<<(len6-network6.Bits()), len6, subnet, index, network)
	}
	base := new(big.Int).SetBytes(network6.Masked().Addr().AsSlice())
	base.Add(base, new(big.Int).Lsh(big.NewInt(int64(index)), uint(128-len6)))
	var b [16]byte
	base.FillBytes(b[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), len6), nil
}

// CheckRoom6 checks that network6 holds at least as many subnets of length
// len6 as network holds of length len4, so that every IPv4 subnet has its
// IPv6 one. The error names the flags an operator changes.
func CheckRoom6(network netip.Prefix, len4 int, network6 netip.Prefix, len6 int) error {
	switch {
	case !network6.Addr().Is6():
		return errors.New("--network: the second network must be IPv6")
	case len6 <= network6.Bits() || len6 > 128:
		return fmt.Errorf("--subnet-len6 %d: must be longer than the IPv6 --network's /%d and at most /128", len6, network6.Bits())
	case len6-network6.Bits() < len4-network.Bits():
		return fmt.Errorf("--network %s with --subnet-len6 %d holds 2^%d IPv6 subnets, fewer than the 2^%d IPv4 subnets of --network %s with --subnet-len %d (shorten the IPv6 --network or lengthen --subnet-len6)",
			network6, len6, len6-network6.Bits(), len4-network.Bits(), network, len4)
	}
	return nil
}

func be4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
