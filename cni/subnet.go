package cni

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNoAgent means the subnet file does not exist: the weft agent is not
// running on this node (it writes the file once it holds a subnet and
// removes it when it stops).
var ErrNoAgent = errors.New("weft agent not running: no subnet file")

// SubnetEnv is what the agent writes to <run-dir>/subnet.env:
//
//	WEFT_NETWORK=10.244.0.0/16
//	WEFT_SUBNET=10.244.1.0/24
//	WEFT_MTU=1424
//	WEFT_IPMASQ=false
type SubnetEnv struct {
	Network netip.Prefix // WEFT_NETWORK: the whole overlay. Required.
	Subnet  netip.Prefix // WEFT_SUBNET: this node's share of it. Required.
	MTU     int          // WEFT_MTU: the overlay MTU in bytes; 0 if absent.
	IPMasq  bool         // WEFT_IPMASQ: masquerade pod traffic leaving the overlay.
}

// Gateway is the address the bridge takes: the subnet's first usable one
// (the network address itself is the agent's, on its TUN device).
func (s SubnetEnv) Gateway() netip.Addr { return s.Subnet.Masked().Addr().Next() }

// ReadSubnetEnv reads and parses the subnet file at path. A missing file is
// ErrNoAgent (wrapped).
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return SubnetEnv{}, fmt.Errorf("%s: %w", path, ErrNoAgent)
	}
	if err != nil {
		return SubnetEnv{}, err
	}
	s, err := ParseSubnetEnv(b)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSubnetEnv parses subnet.env's KEY=VALUE lines. Blank lines, #
// comments and unknown keys (a newer agent's) are ignored; WEFT_NETWORK and
// WEFT_SUBNET are required and the subnet must lie inside the network.
func ParseSubnetEnv(b []byte) (SubnetEnv, error) {
	var s SubnetEnv
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
