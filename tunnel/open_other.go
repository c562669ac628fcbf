//go:build !linux

package tunnel

import (
	"errors"
	"log/slog"
)

// Open creates the TUN device described by cfg. Both drivers need Linux
// (netlink, the TUN clone device), so elsewhere it only validates cfg.
func Open(cfg Config, log *slog.Logger) (Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, errors.New("tun devices are supported on Linux only")
}

// ErrNoPrivilege means this process may not create TUN devices or routes.
var ErrNoPrivilege = errors.New("needs root or CAP_NET_ADMIN")

// CheckAccess fails: TUN devices need Linux.
func CheckAccess() error { return errors.New("tun devices are supported on Linux only") }

// OpenQueues is Open with cfg.Queues queues; Linux only.
func OpenQueues(cfg Config, log *slog.Logger) ([]Device, error) {
	if _, err := Open(cfg, log); err != nil {
		return nil, err
	}
	return nil, errors.New("tun devices are supported on Linux only")
}
