package lab

import (
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// ListenUDP opens a UDP socket inside the host's namespace, for tests that
// send hand-made datagrams (a socket keeps the namespace it was made in).
func (h *Host) ListenUDP(addr *net.UDPAddr) (*net.UDPConn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.GetFromName(h.Netns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Netns, err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return nil, fmt.Errorf("enter %s: %w", h.Netns, err)
	}
	defer netns.Set(orig)
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s: %w", h.Netns, addr, err)
	}
	return c, nil
}
