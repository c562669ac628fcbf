// Package peer is weft's model of a remote node: what the sources that learn
// peers (static --peer flags, gossip) tell the data path that routes to them.
// It is a leaf: it imports nothing of weft, so membership, lab and the control
// API can use it without pulling in the data path.
package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// State is where a peer stands. Only Static and Alive peers are routed; Dead
// and Left ones are shown (status, metrics) until their lease goes, and every
// other value is a bug that is never routed. Gossip states are memberlist's
// own; whether the data path to a peer works is the node's path view.
type State string

const (
	Static State = "static" // from --peer: always routed, never heard from
	Alive  State = "alive"  // a gossip member memberlist has not declared dead or left
	Dead   State = "dead"   // a gossip member declared failed
	Left   State = "left"   // a gossip member that left gracefully
)

// States lists every state, in the order status and metrics show them.
var States = []State{Static, Alive, Dead, Left}

// Routable reports whether a peer in this state gets routes.
func (s State) Routable() bool { return s == Static || s == Alive }

// Info is what a peer source knows about one remote node.
type Info struct {
	Name     string
	Subnet   netip.Prefix
	Subnet6  netip.Prefix   // a dual-stack peer's IPv6 subnet; zero if it has none
	Endpoint netip.AddrPort // underlay address and UDP port
	State    State
	LastSeen time.Time // when gossip last heard from the peer, as of this peer set; zero for static peers
}

// Source feeds the routing table: static --peer flags or gossip. Run calls
// update with the source's complete current peer set whenever it changes
// (the first call is the initial set) until ctx ends. update never blocks
// for long and is not called concurrently by one source; the slices passed
// to it are never modified afterwards.
type Source interface {
	Run(ctx context.Context, update func([]Info)) error
}

// HeardReporter is a Source that hears from its peers (gossip). Status asks
// it when each peer was last heard: that changes with every gossip probe,
// too often to send a new peer set each time. Safe for concurrent use.
type HeardReporter interface {
	LastHeard(name string) (time.Time, bool)
}

// TTLReporter is a Source that leases subnets for a time (gossip). Status
// shows the lease TTL in force, which is the cluster's and may differ from
// the node's own --lease-ttl. Safe for concurrent use.
type TTLReporter interface {
	LeaseTTL() time.Duration
}

// StaticSet is the Source of --peer flags: one fixed set.
type StaticSet []Info

var _ Source = StaticSet(nil)

func (s StaticSet) Run(ctx context.Context, update func([]Info)) error {
	update(s)
	<-ctx.Done()
	return nil
}

// Parse reads a static peer written NAME=SUBNET[,SUBNET6]@IP[:PORT]: a
// dual-stack peer's IPv4 subnet, then its IPv6 one. IP is IPv4, or IPv6 as
// [IP]:PORT or a bare IP; the port defaults to defaultPort.
func Parse(s string, defaultPort uint16) (Info, error) {
	name, rest, ok := strings.Cut(s, "=")
	subnets, ep, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 || name == "" {
		return Info{}, fmt.Errorf("want NAME=SUBNET[,SUBNET6]@IP[:PORT], got %q", s)
	}
	subnet, subnet6, dual := strings.Cut(subnets, ",")
	pfx, err := parseSubnet(name, subnet)
	if err != nil {
		return Info{}, err
	}
	var pfx6 netip.Prefix
	if dual {
		if pfx6, err = parseSubnet(name, subnet6); err != nil {
			return Info{}, err
		}
		if !pfx.Addr().Is4() || !pfx6.Addr().Is6() {
			return Info{}, fmt.Errorf("peer %q: want an IPv4 subnet, then an IPv6 one, got %s,%s", name, pfx, pfx6)
		}
	}
	host, port := ep, strconv.Itoa(int(defaultPort))
	if h, p, err := net.SplitHostPort(ep); err == nil {
		host, port = h, p
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1] // a bare [v6] without a port
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return Info{}, fmt.Errorf("peer %q: endpoint: %w", name, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return Info{}, fmt.Errorf("peer %q: bad port %q", name, port)
	}
	return Info{Name: name, Subnet: pfx, Subnet6: pfx6, Endpoint: netip.AddrPortFrom(addr.Unmap(), uint16(pn)), State: Static}, nil
}

func parseSubnet(name, s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return pfx, fmt.Errorf("peer %q: %w", name, err)
	}
	if pfx != pfx.Masked() {
		return pfx, fmt.Errorf("peer %q: %s is not a network address (did you mean %s?)", name, pfx, pfx.Masked())
	}
	return pfx, nil
}
