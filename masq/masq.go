// Package masq is weft's pod egress (`weft up --ip-masq`): traffic from the
// overlay to anywhere outside it leaves with the node's address, while
// traffic between overlay addresses keeps its pod source. The rules live in
// nftables, in weft's own table of each family the overlay has, written over
// netlink with github.com/google/nftables (no nft binary):
//
//	table ip weft {
//	  chain postrouting {
//	    type nat hook postrouting priority srcnat; policy accept;
//	    ip saddr NETWORK ip daddr NETWORK return
//	    ip saddr NETWORK ip daddr 224.0.0.0/4 return
//	    ip saddr NETWORK masquerade
//	  }
//	}
//	table ip6 weft {                      # a dual-stack overlay's IPv6 network
//	  chain postrouting {                 # the same, multicast being ff00::/8
//	    ...
//	  }
//	}
//
// As flannel's ip-masq does, multicast keeps its source. Install replaces
// the tables in one transaction, so a table a crashed agent left behind is
// replaced, never doubled; Remove deletes them. Other tables (kube-proxy's,
// the host's firewall) are never read or touched.
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
	tables []*nftables.Table
}

func table(network netip.Prefix) *nftables.Table {
	if network.Addr().Is4() {
		return &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv4}
	}
	return &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv6}
}

// valid is networks without zero prefixes.
func valid(networks []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range networks {
		if n.IsValid() {
			out = append(out, n)
		}
	}
	return out
}

// multicast is the family's multicast range, which keeps its source.
func multicast(network netip.Prefix) netip.Prefix {
	if network.Addr().Is4() {
		return netip.MustParsePrefix("224.0.0.0/4")
	}
	return netip.MustParsePrefix("ff00::/8")
}

// Install masquerades traffic from each network to outside it, replacing
// weft's tables if they exist (a crashed agent's), all in one transaction.
// The networks are the overlay's: one, or an IPv4 and an IPv6 one
// (dual-stack); zero prefixes are skipped, so a single-stack node passes
// its Network6 as it is.
func Install(networks ...netip.Prefix) (*Rules, error) {
	networks = valid(networks)
	if len(networks) == 0 || len(networks) > 2 || len(networks) == 2 && networks[0].Addr().Is4() == networks[1].Addr().Is4() {
		return nil, fmt.Errorf("--ip-masq: want one network per family, got %v", networks)
	}
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("--ip-masq: nftables: %w", err)
	}
	r := &Rules{}
	for _, network := range networks {
		r.tables = append(r.tables, addTable(c, network.Masked()))
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("--ip-masq: install nftables table %s: %w", Table, err)
	}
	return r, nil
}

// addTable queues network's table, replacing any, on c.
func addTable(c *nftables.Conn, network netip.Prefix) *nftables.Table {
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
	src := match(network, true)
	ret := []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, match(network, false), ret)})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, match(multicast(network), false), ret)})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(src, []expr.Any{&expr.Masq{}})})
	return t
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

// Remove deletes weft's tables. A table already gone is no error.
func (r *Rules) Remove() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	var errs []error
	// One batch per table: a table already gone fails its own batch only.
	for _, t := range r.tables {
		c.DelTable(t)
		if err := c.Flush(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("--ip-masq: remove nftables table %s %s: %w", family(t), Table, err))
		}
	}
	return errors.Join(errs...)
}

// family is t's family as nft writes it.
func family(t *nftables.Table) string {
	if t.Family == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}

// Check reports whether weft's table for each network (zero ones skipped,
// as by Install) is installed with its chain and three rules, for weft
// doctor: missing names the families ("ip", "ip6") whose table is missing
// or incomplete.
func Check(networks ...netip.Prefix) (missing []string, err error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	for _, network := range valid(networks) {
		t := table(network)
		ok, err := complete(c, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, family(t))
		}
	}
	return missing, nil
}

// complete reports whether t is there with its chain and three rules.
func complete(c *nftables.Conn, t *nftables.Table) (bool, error) {
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
	return len(rules) == 3, nil
}
