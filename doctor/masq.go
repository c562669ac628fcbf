package doctor

import (
	"strings"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/masq"
)

// checkMasq checks that a node running --ip-masq still has its nftables
// tables (ip, and ip6 when dual-stack): a flushed ruleset (nft flush
// ruleset, a firewall reload) takes them away and pods lose the outside.
func checkMasq(f *findings, s *api.Status) {
	if !s.IPMasq {
		return
	}
	missing, err := masq.Check(s.Network, s.Network6)
	switch {
	case err != nil:
		f.warn("run weft doctor as root", "cannot read nftables to check --ip-masq: %v", err)
	case len(missing) > 0:
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		for i, family := range missing {
			missing[i] = "table " + family + " " + masq.Table
		}
		f.fail("restart weft (it installs the tables again); find what flushed the ruleset",
			"--ip-masq is on but nftables %s %s missing or incomplete: pods cannot reach the outside", strings.Join(missing, " and "), verb)
	case s.Network6.IsValid():
		f.ok("egress masqueraded (nftables tables ip %s and ip6 %s)", masq.Table, masq.Table)
	default:
		f.ok("egress masqueraded (nftables table %s)", masq.Table)
	}
}
