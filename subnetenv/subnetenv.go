// Package subnetenv owns subnet.env, the file through which a weft node tells
// the CNI plugin and container runtimes its share of the overlay (as flannel's
// subnet.env does): the format, its writer and parser, and the address rules
// that follow from a node's subnet.
package subnetenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// File is subnet.env's name in the node's run dir.
const File = "subnet.env"

// ErrNoAgent means the subnet file does not exist: the weft agent is not
// running on this node (it writes the file once it holds a subnet and
// removes it when it stops).
var ErrNoAgent = errors.New("weft agent not running: no subnet file")

// Env is what the agent writes to <run-dir>/subnet.env:
//
//	WEFT_NETWORK=10.244.0.0/16
//	WEFT_SUBNET=10.244.1.0/24
//	WEFT_MTU=1424
//	WEFT_IPMASQ=false
//	WEFT_NETWORK6=fd00:10:244::/56   (dual-stack only)
//	WEFT_SUBNET6=fd00:10:244:1::/64  (dual-stack only)
type Env struct {
	Network  netip.Prefix // WEFT_NETWORK: the whole (IPv4) overlay. Required.
	Subnet   netip.Prefix // WEFT_SUBNET: this node's share of it. Required.
	MTU      int          // WEFT_MTU: the overlay MTU in bytes; 0 if absent.
	IPMasq   bool         // WEFT_IPMASQ: masquerade pod traffic leaving the overlay.
	Network6 netip.Prefix // WEFT_NETWORK6: the IPv6 overlay of a dual-stack node; zero if none.
	Subnet6  netip.Prefix // WEFT_SUBNET6: this node's share of Network6; zero if none.
}

// NodeAddress is a node's own overlay address on its TUN: its subnet's
// network address (flannel's convention), which keeps the subnet's first
// usable address free as a container bridge's gateway. The same rule holds
// for IPv6: Linux accepts the all-zeros (subnet-router anycast) address as a
// /128 unicast address on the TUN, answers on it and picks it as source, also
// beside a bridge holding the /64 (which adds the anycast route on the bridge;
// the local route wins).
func NodeAddress(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr() }

// Gateway is the address a container bridge on subnet takes: the first
// usable one, next to the node's own.
func Gateway(subnet netip.Prefix) netip.Addr { return NodeAddress(subnet).Next() }

// Gateway is the gateway of the env's subnet.
func (s Env) Gateway() netip.Addr { return Gateway(s.Subnet) }

// Gateway6 is the gateway of the env's IPv6 subnet; zero if it has none.
func (s Env) Gateway6() netip.Addr {
	if !s.Subnet6.IsValid() {
		return netip.Addr{}
	}
	return Gateway(s.Subnet6)
}

// DualStack reports whether the env has an IPv6 subnet besides the IPv4 one.
func (s Env) DualStack() bool { return s.Subnet6.IsValid() }

// Write writes e to path atomically (a reader never sees half a file).
func Write(path string, e Env) error {
	body := fmt.Sprintf("WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=%t\n", e.Network, e.Subnet, e.MTU, e.IPMasq)
	if e.DualStack() {
		body += fmt.Sprintf("WEFT_NETWORK6=%s\nWEFT_SUBNET6=%s\n", e.Network6, e.Subnet6)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Read reads and parses the subnet file at path. A missing file is
// ErrNoAgent (wrapped).
func Read(path string) (Env, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Env{}, fmt.Errorf("%s: %w", path, ErrNoAgent)
	}
	if err != nil {
		return Env{}, err
	}
	s, err := Parse(b)
	if err != nil {
		return Env{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Parse parses subnet.env's KEY=VALUE lines. Blank lines, #
// comments and unknown keys (a newer agent's) are ignored; WEFT_NETWORK and
// WEFT_SUBNET are required and the subnet must lie inside the network.
func Parse(b []byte) (Env, error) {
	var s Env
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return s, fmt.Errorf("line %d: want KEY=VALUE, have %q", n, line)
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		var err error
		switch strings.TrimSpace(k) {
		case "WEFT_NETWORK":
			s.Network, err = netip.ParsePrefix(v)
		case "WEFT_SUBNET":
			s.Subnet, err = netip.ParsePrefix(v)
		case "WEFT_MTU":
			s.MTU, err = strconv.Atoi(v)
			if err == nil && (s.MTU < 68 || s.MTU > 65535) {
				err = errors.New("out of range 68..65535")
			}
		case "WEFT_IPMASQ":
			s.IPMasq, err = strconv.ParseBool(v)
		case "WEFT_NETWORK6":
			s.Network6, err = parse6(v)
		case "WEFT_SUBNET6":
			s.Subnet6, err = parse6(v)
		}
		if err != nil {
			return s, fmt.Errorf("line %d: %s: %w", n, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	switch {
	case !s.Network.IsValid():
		return s, errors.New("no WEFT_NETWORK line")
	case !s.Subnet.IsValid():
		return s, errors.New("no WEFT_SUBNET line")
	case s.Subnet.Addr().Is4() && s.Subnet.Bits() > 30, s.Subnet.Addr().Is6() && s.Subnet.Bits() > 126:
		return s, fmt.Errorf("WEFT_SUBNET %s leaves no room for pods", s.Subnet)
	case s.Network.Bits() >= s.Subnet.Bits() || !s.Network.Contains(s.Subnet.Addr()):
		return s, fmt.Errorf("WEFT_SUBNET %s is not inside WEFT_NETWORK %s", s.Subnet, s.Network)
	}
	switch {
	case s.Network6.IsValid() != s.Subnet6.IsValid():
		return s, errors.New("WEFT_NETWORK6 and WEFT_SUBNET6 come together")
	case s.Subnet6.IsValid() && s.Subnet6.Bits() > 126:
		return s, fmt.Errorf("WEFT_SUBNET6 %s leaves no room for pods", s.Subnet6)
	case s.Subnet6.IsValid() && (s.Network6.Bits() >= s.Subnet6.Bits() || !s.Network6.Contains(s.Subnet6.Addr())):
		return s, fmt.Errorf("WEFT_SUBNET6 %s is not inside WEFT_NETWORK6 %s", s.Subnet6, s.Network6)
	}
	s.Network, s.Subnet = s.Network.Masked(), s.Subnet.Masked()
	s.Network6, s.Subnet6 = s.Network6.Masked(), s.Subnet6.Masked()
	return s, nil
}

// parse6 parses an IPv6 prefix.
func parse6(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err == nil && !p.Addr().Is6() {
		err = errors.New("not an IPv6 prefix")
	}
	return p, err
}

// WriteAs writes the env in the form a container runtime on a plain host
// needs: "env" (shell variables), "docker" (daemon.json and dockerd flags),
// "podman" (a command creating the network podmanNet) or "json".
func (s Env) WriteAs(w io.Writer, format, podmanNet string) error {
	gw, gw6 := s.Gateway(), s.Gateway6()
	bip := fmt.Sprintf("%s/%d", gw, s.Subnet.Bits())
	switch format {
	case "env":
		fmt.Fprintf(w, "WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_GATEWAY=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=%t\n",
			s.Network, s.Subnet, gw, s.MTU, s.IPMasq)
		if s.DualStack() {
			fmt.Fprintf(w, "WEFT_NETWORK6=%s\nWEFT_SUBNET6=%s\nWEFT_GATEWAY6=%s\n", s.Network6, s.Subnet6, gw6)
		}
	case "docker":
		daemon, flags := map[string]any{"bip": bip, "mtu": s.MTU}, fmt.Sprintf("--bip=%s --mtu=%d", bip, s.MTU)
		if s.DualStack() {
			// Docker's bridge takes the first address of fixed-cidr-v6 as
			// its gateway: the subnet's gateway, as for IPv4.
			daemon["ipv6"], daemon["fixed-cidr-v6"] = true, s.Subnet6.String()
			flags += fmt.Sprintf(" --ipv6 --fixed-cidr-v6=%s", s.Subnet6)
		}
		b, _ := json.MarshalIndent(daemon, "", "  ")
		fmt.Fprintf(w, "# /etc/docker/daemon.json (merge into an existing file), then: systemctl restart docker\n%s\n", b)
		fmt.Fprintf(w, "# or as dockerd flags:\n# %s\n", flags)
	case "podman":
		v6 := ""
		if s.DualStack() {
			v6 = fmt.Sprintf("--ipv6 --subnet %s --gateway %s ", s.Subnet6, gw6)
		}
		fmt.Fprintf(w, "podman network create --subnet %s --gateway %s %s--opt mtu=%d %s\n", s.Subnet, gw, v6, s.MTU, podmanNet)
		fmt.Fprintf(w, "# then: podman run --network %s ...\n", podmanNet)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		out := map[string]any{"network": s.Network, "subnet": s.Subnet, "gateway": gw, "mtu": s.MTU, "ipmasq": s.IPMasq}
		if s.DualStack() {
			out["network6"], out["subnet6"], out["gateway6"] = s.Network6, s.Subnet6, gw6
		}
		return enc.Encode(out)
	default:
		return errors.New("want env, docker, podman or json")
	}
	return nil
}
