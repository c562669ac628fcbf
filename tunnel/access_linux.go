package tunnel

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoPrivilege means this process may not create TUN devices or routes.
var ErrNoPrivilege = errors.New("needs root or CAP_NET_ADMIN")

// CheckAccess reports, without creating anything, whether Open can work:
// the process holds CAP_NET_ADMIN (root normally does) and can open the TUN
// clone device. A node checks this before it joins a cluster, so a missing
// privilege fails in one line rather than after its subnet was leased.
func CheckAccess() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read this process's capabilities: %w", err)
	}
	if data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) == 0 {
		return fmt.Errorf("%w (to create the TUN device and its routes)", ErrNoPrivilege)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("needs /dev/net/tun: open: %w (in a container: pass the device, e.g. --device /dev/net/tun)", err)
	}
	return unix.Close(fd)
}
