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
type Env struct {
	Network netip.Prefix // WEFT_NETWORK: the whole overlay. Required.
	Subnet  netip.Prefix // WEFT_SUBNET: this node's share of it. Required.
	MTU     int          // WEFT_MTU: the overlay MTU in bytes; 0 if absent.
	IPMasq  bool         // WEFT_IPMASQ: masquerade pod traffic leaving the overlay.
}

// NodeAddress is a node's own overlay address on its TUN: its subnet's
// network address (flannel's convention), which keeps the subnet's first
// usable address free as a container bridge's gateway.
func NodeAddress(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr() }

// Gateway is the address a container bridge on subnet takes: the first
// usable one, next to the node's own.
func Gateway(subnet netip.Prefix) netip.Addr { return NodeAddress(subnet).Next() }

// Gateway is the gateway of the env's subnet.
func (s Env) Gateway() netip.Addr { return Gateway(s.Subnet) }

// Write writes e to path atomically (a reader never sees half a file).
func Write(path string, e Env) error {
	body := fmt.Sprintf("WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=%t\n", e.Network, e.Subnet, e.MTU, e.IPMasq)
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
	s.Network, s.Subnet = s.Network.Masked(), s.Subnet.Masked()
	return s, nil
}

// WriteAs writes the env in the form a container runtime on a plain host
// needs: "env" (shell variables), "docker" (daemon.json and dockerd flags),
// "podman" (a command creating the network podmanNet) or "json".
func (s Env) WriteAs(w io.Writer, format, podmanNet string) error {
	gw := s.Gateway()
	bip := fmt.Sprintf("%s/%d", gw, s.Subnet.Bits())
	switch format {
	case "env":
		fmt.Fprintf(w, "WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_GATEWAY=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=%t\n",
			s.Network, s.Subnet, gw, s.MTU, s.IPMasq)
	case "docker":
		b, _ := json.MarshalIndent(map[string]any{"bip": bip, "mtu": s.MTU}, "", "  ")
		fmt.Fprintf(w, "# /etc/docker/daemon.json (merge into an existing file), then: systemctl restart docker\n%s\n", b)
		fmt.Fprintf(w, "# or as dockerd flags:\n# --bip=%s --mtu=%d\n", bip, s.MTU)
	case "podman":
		fmt.Fprintf(w, "podman network create --subnet %s --gateway %s --opt mtu=%d %s\n", s.Subnet, gw, s.MTU, podmanNet)
		fmt.Fprintf(w, "# then: podman run --network %s ...\n", podmanNet)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"network": s.Network, "subnet": s.Subnet, "gateway": gw, "mtu": s.MTU, "ipmasq": s.IPMasq})
	default:
		return errors.New("want env, docker, podman or json")
	}
	return nil
}
