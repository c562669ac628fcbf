// Package masq is weft's pod egress (`weft up --ip-masq`): traffic from the
// overlay to anywhere outside it leaves with the node's address, while
// traffic between overlay addresses keeps its pod source. The rules live in
// nftables, in weft's own table, written over netlink with
// github.com/google/nftables (no nft binary):
//
//	table ip weft {                       # ip6 for an IPv6 overlay
//	  chain postrouting {
//	    type nat hook postrouting priority srcnat; policy accept;
//	    ip saddr NETWORK ip daddr NETWORK return
//	    ip saddr NETWORK ip daddr 224.0.0.0/4 return
//	    ip saddr NETWORK masquerade
//	  }
//	}
//
// Install replaces the whole table in one transaction, so a table a crashed
// agent left behind is replaced, never doubled; Remove deletes it. Other
// tables (kube-proxy's, the host's firewall) are never read or touched.
package masq

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Table is the name of weft's nftables table (family ip or ip6).
const Table = "weft"

const chainName = "postrouting"

// Rules are weft's installed masquerade rules.
type Rules struct {
	network netip.Prefix
	table   *nftables.Table
}

func table(network netip.Prefix) *nftables.Table {
	if network.Addr().Is4() {
		return &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv4}
	}
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv6}
}

// Install masquerades traffic from network to outside it, replacing weft's
// table if it exists (a crashed agent's).
func Install(network netip.Prefix) (*Rules, error) {
	network = network.Masked()
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("--ip-masq: nftables: %w", err)
	}
	t := table(network)
	// Add, delete and add again in one batch: atomic, whether or not the
	// table existed.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{
		Name: chainName, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	src, dst := match(network, true), match(network, false)
	ret := []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, dst, ret)})
	if network.Addr().Is4() {
		multicast := match(netip.MustParsePrefix("224.0.0.0/4"), false)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, multicast, ret)})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, []expr.Any{&expr.Masq{}})})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("--ip-masq: install nftables table %s: %w", Table, err)
	}
	return &Rules{network: network, table: t}, nil
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// match is "ip saddr PREFIX" (src) or "ip daddr PREFIX" in expressions.
func match(p netip.Prefix, src bool) []expr.Any {
	offset, n := uint32(16), uint32(4) // IPv4 header: daddr at 16
	if src {
		offset = 12
	}
	if p.Addr().Is6() {
		offset, n = 24, 16
		if src {
			offset = 8
		}
	}
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
	}
}

// Remove deletes weft's table. A table already gone is no error.
func (r *Rules) Remove() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	c.DelTable(r.table)
	if err := c.Flush(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--ip-masq: remove nftables table %s: %w", Table, err)
	}
	return nil
}

// Check reports whether weft's table for network is installed with its
// chain and three (IPv6: two) rules: what status and doctor show.
func Check(network netip.Prefix) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	t := table(network)
	if _, err := c.ListTableOfFamily(Table, t.Family); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	rules, err := c.GetRules(t, &nftables.Chain{Name: chainName, Table: t})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	want := 3
	if network.Addr().Is6() {
		want = 2
	}
	return len(rules) == want, nil
}
