package doctor

import (
	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/masq"
)

// checkMasq checks that a node running --ip-masq still has its nftables
// table: a flushed ruleset (nft flush ruleset, a firewall reload) takes it
// away and pods lose the outside.
func checkMasq(f *findings, s *api.Status) {
	if !s.IPMasq {
		return
	}
	ok, err := masq.Check(s.Network)
	switch {
	case err != nil:
		f.warn("run weft doctor as root", "cannot read nftables to check --ip-masq: %v", err)
	case !ok:
		f.fail("restart weft (it installs the table again); find what flushed the ruleset",
			"--ip-masq is on but nftables table ip %s is missing or incomplete: pods cannot reach the outside", masq.Table)
	default:
		f.ok("egress masqueraded (nftables table %s)", masq.Table)
	}
}
