package tunnel_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/tunnel"
)

// TestMain runs the package's tests in a private network namespace, where
// they may create TUN devices, addresses and routes freely.
func TestMain(m *testing.M) { os.Exit(testenv.InNetns(m)) }

func validConfig() tunnel.Config {
	return tunnel.Config{
		Name:    "weft0",
		MTU:     1400,
		Address: netip.MustParsePrefix("10.99.1.0/32"),
		Routes:  []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")},
	}
}

// badConfigs are shared with the Open test, which checks that none of them
// leaves a link behind.
var badConfigs = []struct {
	name   string
	modify func(*tunnel.Config)
	want   string // in the error
}{
	{"empty name", func(c *tunnel.Config) { c.Name = "" }, "name is empty"},
	{"name too long", func(c *tunnel.Config) { c.Name = "weft-name-too-long" }, "at most 15"},
	{"name with slash", func(c *tunnel.Config) { c.Name = "weft/0" }, "not a valid interface name"},
	{"unknown driver", func(c *tunnel.Config) { c.Driver = "tap" }, `unknown tun driver "tap" (valid: wireguard, water)`},
	{"MTU 0", func(c *tunnel.Config) { c.MTU = 0 }, "MTU 0 out of range 576..65535"},
	{"MTU too big", func(c *tunnel.Config) { c.MTU = 70000 }, "out of range"},
	{"IPv6 below 1280", func(c *tunnel.Config) {
		c.MTU = 1000
		c.Address = netip.MustParsePrefix("fd99::1/128")
		c.Routes = nil
	}, "IPv6 needs 1280"},
	{"IPv6 route below 1280", func(c *tunnel.Config) {
		c.MTU = 1000
		c.Routes = append(c.Routes, netip.MustParsePrefix("fd99::/48"))
	}, "IPv6 needs 1280"},
	{"no address", func(c *tunnel.Config) { c.Address = netip.Prefix{} }, "address"},
	{"route with host bits", func(c *tunnel.Config) {
		c.Routes = []netip.Prefix{netip.MustParsePrefix("10.99.1.1/16")}
	}, "did you mean 10.99.0.0/16"},
	{"negative queues", func(c *tunnel.Config) { c.Queues = -1 }, "tun queues -1 out of range 1..256"},
	{"too many queues", func(c *tunnel.Config) { c.Queues = 257 }, "out of range 1..256"},
	{"water with queues", func(c *tunnel.Config) {
		c.Driver = tunnel.DriverWater
		c.Queues = 2
	}, "tun driver water has one queue, not 2"},
}

func TestValidate(t *testing.T) {
	for _, driver := range []string{"", tunnel.DriverWireguard, tunnel.DriverWater} {
		cfg := validConfig()
		cfg.Driver = driver
		if err := cfg.Validate(); err != nil {
			t.Errorf("driver %q: valid config rejected: %v", driver, err)
		}
	}
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
