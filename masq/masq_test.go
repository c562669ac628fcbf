package masq

import (
	"net/netip"
	"os"
	"testing"

	"github.com/google/nftables"

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

	if ok, err := Check(network); ok || err != nil {
		t.Fatalf("before Install: Check %v, %v", ok, err)
	}
	if _, err := Install(network); err != nil {
		t.Fatal(err)
	}
	// A crashed agent's table is there when the next one starts.
	r, err := Install(network)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Check(network); !ok || err != nil {
		t.Fatalf("after Install twice: Check %v, %v (want the table with its three rules once)", ok, err)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if ok, err := Check(network); ok || err != nil {
		t.Fatalf("after Remove: Check %v, %v", ok, err)
	}
	if err := r.Remove(); err != nil {
		t.Fatalf("Remove of a removed table: %v", err)
	}
	if _, err := c.ListTableOfFamily("kube-proxy", nftables.TableFamilyIPv4); err != nil {
		t.Fatalf("kube-proxy's table: %v", err)
	}
}

func TestInstallIPv6(t *testing.T) {
	testenv.Require(t)
	network := netip.MustParsePrefix("fd00:10::/48")
	r, err := Install(network)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	if ok, err := Check(network); !ok || err != nil {
		t.Fatalf("Check %v, %v", ok, err)
	}
}
