package tunnel

// Open is the only way in: validate, refuse an existing name, create the
// device with the chosen driver, then configure it over netlink (MTU, address,
// up, routes). Any failure after creation closes the device, and with it the
// link, so a failed Open leaves nothing behind.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Open creates, configures and brings up the TUN device described by cfg,
// with one queue (cfg.Queues must be 0 or 1). The device (and its addresses
// and routes) lives until Device.Close or the end of the process. If a link
// named cfg.Name already exists the error wraps ErrExists. log may be nil.
func Open(cfg Config, log *slog.Logger) (Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Queues > 1 {
		return nil, fmt.Errorf("tun queues %d: Open opens one; use OpenQueues", cfg.Queues)
	}
	devs, err := OpenQueues(cfg, log)
	if err != nil {
		return nil, err
	}
	return devs[0], nil
}

// OpenQueues is Open with cfg.Queues queues (at least one): it returns one
// Device per queue. The device lives until every queue is closed.
func OpenQueues(cfg Config, log *slog.Logger) ([]Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	queues := max(cfg.Queues, 1)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Check first: TUNSETIFF would attach to a persistent TUN of that name
	// rather than fail, and water leaks its fd when the ioctl fails.
	if _, err := netlink.LinkByName(cfg.Name); err == nil {
		return nil, existsError{cfg.Name}
	} else if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil, fmt.Errorf("look up link %q: %w", cfg.Name, err)
	}

	driver := cfg.driver()
	var (
		devs []Device
		err  error
	)
	switch driver {
	case DriverWater: // one queue: Validate refuses more
		var dev Device
		if dev, err = openWater(cfg.Name, cfg.MTU); err == nil {
			devs = []Device{dev}
		}
	default:
		devs, err = openWireguardQueues(cfg.Name, cfg.MTU, queues)
	}
	if errors.Is(err, unix.EBUSY) { // lost a race with another creator
		return nil, existsError{cfg.Name}
	}
	if err != nil {
		return nil, fmt.Errorf("create tun %q with driver %s: %w", cfg.Name, driver, err)
	}
	if err := configure(cfg); err != nil {
		for _, dev := range devs {
			_ = dev.Close() // the last removes the link with whatever was configured
		}
		return nil, err
	}

	off := devs[0].Offloads()
	log.Info("tun device up", "tun", cfg.Name, "driver", driver, "mtu", cfg.MTU,
		"address", cfg.Address, "queues", len(devs), "tso", off.TSO, "gro", off.GRO)
	if driver == DriverWireguard && off.Reason != "" {
		log.Warn("tun offloads off: expect lower throughput", "tun", cfg.Name, "err", off.Reason)
	}
	return devs, nil
}

// configure sets the MTU, adds the address, brings the link up and adds the
// routes, in that order: IPv4 routes cannot be added to a link that is down.
func configure(cfg Config) error {
	link, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return fmt.Errorf("find new link %s: %w", cfg.Name, err)
	}
	if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", cfg.MTU, cfg.Name, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(cfg.Address)}
	if cfg.Address.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD // nobody else is on a TUN link
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", cfg.Address, cfg.Name, err)
	}
	if cfg.Address6.IsValid() {
		a6 := &netlink.Addr{IPNet: ipNet(cfg.Address6), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, a6); err != nil {
			return fmt.Errorf("add address %s to %s: %w", cfg.Address6, cfg.Name, err)
		}
	}
	if cfg.usesIPv6() {
		// No link-local address: without one the kernel sends no router
		// solicitations into the TUN, which weft could only drop as
		// nobody's traffic. The MLD reports for the all-routers groups it
		// joined when the link appeared still come when the link goes up:
		// weft counts them as multicast drops, which status's text leaves
		// out.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+cfg.Name+"/addr_gen_mode", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("turn off IPv6 link-local addresses on %s: %w", cfg.Name, err)
		}
	} else {
		// An IPv4 overlay has no use for the link-local address and the
		// router solicitations and MLD reports the kernel would send.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+cfg.Name+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("disable IPv6 on %s: %w", cfg.Name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", cfg.Name, err)
	}
	for _, r := range cfg.Routes {
		// A shorter-than-host address already brought its prefix route.
		if cfg.Address.Bits() < cfg.Address.Addr().BitLen() && r == cfg.Address.Masked() {
			continue
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(r), Scope: netlink.SCOPE_LINK}
		// RouteAdd, not RouteReplace: fail loudly rather than steal a
		// route another interface owns.
		if err := netlink.RouteAdd(route); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("a route to %s already exists (another weft on this host, or a clashing network): %w", r, ErrRouteExists)
			}
			return fmt.Errorf("add route %s via %s: %w", r, cfg.Name, err)
		}
	}
	return nil
}

// ipNet converts p, keeping its host bits (an address, not only a network).
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// existsError names the taken interface; errors.Is(err, ErrExists) holds.
type existsError struct{ name string }

func (e existsError) Error() string {
	return fmt.Sprintf("tun device %q already exists (another weft running? pick another --tun)", e.name)
}

func (e existsError) Unwrap() error { return ErrExists }

// isClosedErr reports whether err from the file means the device is gone:
// closed by us (os.ErrClosed) or its link deleted (EBADFD).
func isClosedErr(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADFD)
}
