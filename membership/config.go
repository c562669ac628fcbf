package membership

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"github.com/weftnet/weft/subnetenv"
)

// DefaultGossipPort is memberlist's usual port (TCP and UDP).
const DefaultGossipPort = 7946

// label is sent with every memberlist packet so weft never merges with another
// memberlist cluster (Consul, Serf, …) that happens to share the port.
const label = "weft"

// Config configures one node's membership. Units and defaults are given per
// field; DefaultConfig returns them and New validates the result.
type Config struct {
	// Name identifies the node in the cluster and keys its lease, so a node
	// that restarts under the same name gets its subnet back. Default: the
	// hostname. 1–255 bytes of printable UTF-8.
	Name string
	// Advertise is the underlay IP address gossip announces. Required (the
	// caller picks the underlay interface).
	Advertise netip.Addr
	// Bind is the address gossip listens on; zero is Advertise. weft up
	// binds what --listen binds, all addresses by default, so a seed given
	// by another of its addresses than the one it advertises still answers,
	// and a joiner that advertises the same address as a member learns so
	// (ErrEndpointInUse) instead of finding nobody at the seed.
	Bind netip.Addr
	// GossipPort is the TCP and UDP port of gossip on Advertise. Default 7946;
	// 0 picks a free port (tests), which GossipAddr reports after Start.
	GossipPort int
	// Join lists seeds as "host[:port]" (DNS names allowed, port default
	// GossipPort). Any one live seed is enough; seeds that do not answer are
	// retried in the background. Empty for the first node of a cluster.
	Join []string
	// Network is the whole overlay. Default 10.244.0.0/16.
	Network netip.Prefix
	// SubnetLen is the prefix length of the subnets picked for nodes. Default 24.
	SubnetLen int
	// Network6 is the IPv6 overlay of a dual-stack cluster; zero for IPv4
	// only. Nodes lease only IPv4 subnets: each one's IPv6 subnet, of
	// length SubnetLen6, is derived from it (subnetenv.Subnet6) and
	// announced, and a member whose Network6 or IPv6 subnet differs from
	// ours is rejected.
	Network6   netip.Prefix
	SubnetLen6 int
	// Subnet is an optional requested subnet (--subnet). It is used when no
	// other node's lease beats it; otherwise a free subnet is picked.
	Subnet netip.Prefix
	// DataEndpoint is the underlay UDP address peers send overlay traffic to.
	// Required.
	DataEndpoint netip.AddrPort
	// StateDir holds leases.json. Default /var/lib/weft.
	StateDir string
	// LeaseTTL is how long the subnet of a node that is gone (dead or left)
	// stays reserved after it was last seen alive. Default 24h. It is a
	// property of the cluster: every node announces the TTL it uses, and a
	// node adopts the one of the member whose claim ranks first (the oldest
	// lease), logging it when that differs from its own.
	LeaseTTL time.Duration
	// MaxClockSkew is how far apart two nodes' clocks may be. Lease records
	// carry how long ago their owner was seen alive (an age, not a time), so
	// skew does not matter between nodes of this version; records without
	// that age (the lease file of an older version, an older node) and
	// tombstones are kept this much longer, so that a node whose clock runs
	// fast never forgets a reservation the rest of the cluster still holds.
	// Default 10m (±5 minutes around the true time).
	MaxClockSkew time.Duration
	// Reserved are subnets that gossip never hands out and that no member
	// may announce: those of static peers (--peer). Give every node the same.
	Reserved []netip.Prefix
	// SettleWindow is how long Start waits after the last claim it heard of
	// for competing claims to arrive by gossip before it trusts its own; it
	// is skipped for the first node of a cluster, and lengthened to the time
	// memberlist takes to spread a broadcast when the cluster is large (see
	// settleWindow). Default 2s.
	SettleWindow time.Duration
	// JoinRetry and JoinRetryMax bound the backoff between attempts to reach
	// the seeds while none answers. Default 1s and 30s.
	JoinRetry, JoinRetryMax time.Duration
	// RejoinInterval is how often a joined node contacts seeds it cannot see
	// and a few gone members that still hold a lease, so a partition heals
	// without a restart. Default 20s.
	RejoinInterval time.Duration
	// NameConflictWait is how long Start waits for another node announcing
	// this node's name (at another address) to be declared failed, which is
	// what a quick restart at a new address looks like, before it gives up
	// with ErrNameInUse. Default 15s (twice the failure-detection time).
	NameConflictWait time.Duration
	// LeaveTimeout bounds the goodbye broadcast when the node stops. Default 5s.
	LeaveTimeout time.Duration
	// Keys are gossip keys (32 bytes each, from encap.GossipKey of the cluster
	// secrets); the first encrypts, all are tried on receipt. With keys,
	// memberlist encrypts and authenticates every gossip message and refuses
	// unencrypted ones, so a node with another key cannot join and learns
	// nothing. None: gossip in clear (--insecure).
	Keys [][]byte
	// Log receives the package's logs. Default slog.Default().
	Log *slog.Logger
	// Memberlist, if set, adjusts memberlist's configuration after weft's
	// settings are applied to memberlist.DefaultLANConfig; tests use it for
	// fast timing. It must not replace the delegates.
	Memberlist func(*memberlist.Config)
}

// DefaultConfig returns the defaults; Advertise and DataEndpoint must still be set.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Name:             host,
		GossipPort:       DefaultGossipPort,
		Network:          netip.MustParsePrefix("10.244.0.0/16"),
		SubnetLen:        24,
		SubnetLen6:       64,
		StateDir:         "/var/lib/weft",
		LeaseTTL:         24 * time.Hour,
		MaxClockSkew:     10 * time.Minute,
		SettleWindow:     2 * time.Second,
		JoinRetry:        time.Second,
		JoinRetryMax:     30 * time.Second,
		RejoinInterval:   20 * time.Second,
		NameConflictWait: 15 * time.Second,
		LeaveTimeout:     5 * time.Second,
	}
}

func (c *Config) validate() error {
	if err := validName(c.Name); err != nil {
		return fmt.Errorf("name %q: %w", c.Name, err)
	}
	if !c.Advertise.IsValid() || c.Advertise.IsUnspecified() {
		return fmt.Errorf("advertise address %v: need a specific IP address", c.Advertise)
	}
	if c.GossipPort < 0 || c.GossipPort > 65535 {
		return fmt.Errorf("gossip port %d: out of range", c.GossipPort)
	}
	if len(c.Keys) > 0 {
		if _, err := memberlist.NewKeyring(c.Keys[1:], c.Keys[0]); err != nil {
			return fmt.Errorf("gossip keys: %w", err)
		}
	}
	if !c.Network.IsValid() || c.Network != c.Network.Masked() {
		return fmt.Errorf("network %s: not a network address", c.Network)
	}
	if c.SubnetLen <= c.Network.Bits() || c.SubnetLen > c.Network.Addr().BitLen() {
		return fmt.Errorf("subnet length %d: must be longer than the network's /%d and at most /%d",
			c.SubnetLen, c.Network.Bits(), c.Network.Addr().BitLen())
	}
	if c.Network6.IsValid() {
		if err := subnetenv.CheckRoom6(c.Network, c.SubnetLen, c.Network6, c.SubnetLen6); err != nil {
			return err
		}
	}
	if c.Subnet.IsValid() {
		if err := insideNetwork(c.Subnet, c.Network); err != nil {
			return fmt.Errorf("requested subnet: %w", err)
		}
	}
	if !c.DataEndpoint.IsValid() || c.DataEndpoint.Port() == 0 {
		return fmt.Errorf("data endpoint %v: need an address and a non-zero port", c.DataEndpoint)
	}
	if c.StateDir == "" {
		return errors.New("state dir must not be empty")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lease TTL", c.LeaseTTL}, {"join retry", c.JoinRetry}, {"join retry max", c.JoinRetryMax},
		{"rejoin interval", c.RejoinInterval}, {"leave timeout", c.LeaveTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: must be positive", d.name, d.v)
		}
	}
	if c.SettleWindow < 0 || c.NameConflictWait < 0 || c.MaxClockSkew < 0 {
		return errors.New("settle window, name conflict wait and max clock skew must not be negative")
	}
	for _, p := range c.Reserved {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("reserved subnet %v: not a network address", p)
		}
	}
	if c.JoinRetryMax < c.JoinRetry {
		return fmt.Errorf("join retry max %v is below join retry %v", c.JoinRetryMax, c.JoinRetry)
	}
	for _, s := range c.Join {
		if _, err := seedAddr(s, c.GossipPort); err != nil {
			return err
		}
	}
	return nil
}

// validName accepts what fits the metadata and prints safely in logs.
func validName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > 255:
		return errors.New("longer than 255 bytes")
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("contains %q", r)
		}
	}
	return nil
}

// subnet6 is the IPv6 subnet that goes with subnet in a dual-stack
// cluster; zero without Network6 or subnet.
func (c *Config) subnet6(subnet netip.Prefix) netip.Prefix {
	if !c.Network6.IsValid() || !subnet.IsValid() {
		return netip.Prefix{}
	}
	s6, _ := subnetenv.Subnet6(c.Network, subnet, c.Network6, c.SubnetLen6)
	return s6
}

// prefixOrNone writes p, or "none" if it is zero, for log lines.
func prefixOrNone(p netip.Prefix) string {
	if !p.IsValid() {
		return "none"
	}
	return p.String()
}

// insideNetwork checks a node subnet: masked, and strictly inside network.
func insideNetwork(p, network netip.Prefix) error {
	switch {
	case p != p.Masked():
		return fmt.Errorf("%s is not a network address", p)
	case p.Addr().Is4() != network.Addr().Is4() || p.Bits() <= network.Bits() || !network.Contains(p.Addr()):
		return fmt.Errorf("%s is not inside the network %s", p, network)
	}
	return nil
}

// seedAddr normalises a seed to host:port, adding the gossip port.
func seedAddr(s string, defPort int) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare name, IPv4 address, or IPv6 address (bracketed or not).
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
	}
	if host == "" {
		return "", fmt.Errorf("seed %q: no host", s)
	}
	if port == "" {
		if defPort == 0 {
			return "", fmt.Errorf("seed %q: needs a port when the gossip port is chosen at random", s)
		}
		port = strconv.Itoa(defPort)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("seed %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// memberlistConfig turns Config into memberlist's, wiring d as every delegate.
func (c *Config) memberlistConfig(d *delegate, lg *slog.Logger) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.Label = label
	mc.BindAddr = c.bindAddr().String()
	mc.BindPort = c.GossipPort
	mc.AdvertiseAddr = c.Advertise.String()
	mc.AdvertisePort = c.GossipPort
	// A node that restarts at a new address may take over its own name as soon
	// as the old address is declared dead (memberlist refuses otherwise).
	mc.DeadNodeReclaimTime = time.Nanosecond
	// A dead member's routes go when memberlist declares it dead, after
	// SuspicionMult × log10(n) × ProbeInterval once one other member has
	// confirmed the suspicion (SuspicionMult−2 confirmations): 3 instead of
	// the LAN preset's 4 brings that under 10 s at 200 members (see doc.go
	// for the trade-off).
	mc.SuspicionMult = 3
	mc.Delegate, mc.Events, mc.Conflict, mc.Alive, mc.Ping = d, d, d, d, d
	mc.Logger = log.New(memberlistLog{lg}, "", 0)
	if len(c.Keys) > 0 {
		mc.Keyring, _ = memberlist.NewKeyring(c.Keys[1:], c.Keys[0]) // checked in validate
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	if c.Memberlist != nil {
		c.Memberlist(mc)
	}
	return mc
}

// bindAddr is Bind, else Advertise.
func (c *Config) bindAddr() netip.Addr {
	if c.Bind.IsValid() {
		return c.Bind
	}
	return c.Advertise
}

// memberlistLog sends memberlist's own log lines to slog at debug level: they
// repeat on every failed probe, and weft logs the events that matter itself.
type memberlistLog struct{ log *slog.Logger }

var _ io.Writer = memberlistLog{}

func (w memberlistLog) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "from", "memberlist")
	return len(p), nil
}
