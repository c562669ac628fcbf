package masq

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/weftnet/weft/internal/testenv"
)

// The tests change nftables, so they run in a network namespace of their
// own (testenv.InNetns).
func TestMain(m *testing.M) { os.Exit(testenv.InNetns(m)) }

// Install replaces a leftover table instead of doubling it, Remove takes it
// away, and a table of someone else's (kube-proxy's) is never touched.
func TestInstallReplaceRemove(t *testing.T) {
	testenv.Require(t)
	network := netip.MustParsePrefix("10.244.0.0/16")
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	other := c.AddTable(&nftables.Table{Name: "kube-proxy", Family: nftables.TableFamilyIPv4})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DelTable(other); c.Flush() })

	checkMissing(t, "before Install", []string{"ip"}, network)
	if _, err := Install(network); err != nil {
		t.Fatal(err)
	}
	// A crashed agent's table is there when the next one starts.
	r, err := Install(network, netip.Prefix{}) // a single-stack node's zero Network6
	if err != nil {
		t.Fatal(err)
	}
	checkMissing(t, "after Install twice", nil, network)
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	checkMissing(t, "after Remove", []string{"ip"}, network)
	if err := r.Remove(); err != nil {
		t.Fatalf("Remove of a removed table: %v", err)
	}
	if _, err := c.ListTableOfFamily("kube-proxy", nftables.TableFamilyIPv4); err != nil {
		t.Fatalf("kube-proxy's table: %v", err)
	}
}

// A dual-stack overlay gets a table of each family, with the same three
// rules; multicast keeps its source in both, as with flannel's ip-masq.
func TestInstallDualStack(t *testing.T) {
	testenv.Require(t)
	network, network6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")
	r, err := Install(network, network6)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	checkMissing(t, "after Install", nil, network, network6)
	for _, tc := range []struct {
		table *nftables.Table
		want  []string
	}{
		{table(network), []string{
			"saddr 10.244.0.0/16 daddr 10.244.0.0/16 return",
			"saddr 10.244.0.0/16 daddr 224.0.0.0/4 return",
			"saddr 10.244.0.0/16 masquerade",
		}},
		{table(network6), []string{
			"saddr fd00:10:244::/56 daddr fd00:10:244::/56 return",
			"saddr fd00:10:244::/56 daddr ff00::/8 return",
			"saddr fd00:10:244::/56 masquerade",
		}},
	} {
		if got := listRules(t, tc.table); !slices.Equal(got, tc.want) {
			t.Errorf("table %s %s:\n%s\nwant\n%s", family(tc.table), Table, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}

	// A flushed IPv6 table is named; Remove takes what is left.
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(table(network6))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	checkMissing(t, "after the ip6 table's removal", []string{"ip6"}, network, network6)
	if err := r.Remove(); err != nil {
		t.Fatalf("Remove with the ip6 table gone: %v", err)
	}
	checkMissing(t, "after Remove", []string{"ip", "ip6"}, network, network6)
}

func TestInstallRefuses(t *testing.T) {
	for _, networks := range [][]netip.Prefix{
		nil,
		{{}},
		{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.245.0.0/16")},
		{netip.MustParsePrefix("fd00:1::/56"), netip.MustParsePrefix("fd00:2::/56")},
	} {
		if _, err := Install(networks...); err == nil {
			t.Errorf("Install(%v) accepted", networks)
		}
	}
}

// checkMissing checks what Check(networks) reports missing.
func checkMissing(t *testing.T, when string, want []string, networks ...netip.Prefix) {
	t.Helper()
	missing, err := Check(networks...)
	if err != nil || !slices.Equal(missing, want) {
		t.Fatalf("%s: Check(%v) = %v, %v; want %v missing", when, networks, missing, err, want)
	}
}

// listRules reads the rules of t's chain back from the kernel, each as
// "saddr P [daddr P] return|masquerade".
func listRules(t *testing.T, tbl *nftables.Table) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(tbl, &nftables.Chain{Name: chainName, Table: tbl})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		var words []string
		var field string
		var mask []byte
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Payload:
				field = "daddr"
				if e.Offset == 12 || e.Offset == 8 {
					field = "saddr"
				}
			case *expr.Bitwise:
				mask = e.Mask
			case *expr.Cmp:
				addr, _ := netip.AddrFromSlice(e.Data)
				bits := 0
				for _, b := range mask {
					for ; b != 0; b <<= 1 {
						bits++
					}
				}
				words = append(words, field, netip.PrefixFrom(addr, bits).String())
			case *expr.Verdict:
				words = append(words, "return")
				if e.Kind != expr.VerdictReturn {
					words[len(words)-1] = fmt.Sprintf("verdict %d", e.Kind)
				}
			case *expr.Masq:
				words = append(words, "masquerade")
			default:
				words = append(words, fmt.Sprintf("%T", e))
			}
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}
