package api

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/weftnet/weft/subnetenv"
)

// ErrStaleSubnetFile means subnet.env exists but no agent stands behind it:
// nothing answers on the control socket beside it (an agent killed with -9
// cannot remove the file), or the agent there holds another subnet.
var ErrStaleSubnetFile = errors.New("no live agent behind the subnet file")

// AgentTimeout is how long ReadLiveSubnetEnv waits for the agent to answer.
const AgentTimeout = 2 * time.Second

// ReadLiveSubnetEnv reads the subnet file at path (subnetenv.Read: a missing
// file is subnetenv.ErrNoAgent) and trusts it only if the agent answers on
// weft.sock beside it, within timeout, holding the same subnet; else the
// error wraps ErrStaleSubnetFile and says why, and the file's contents are
// returned with it.
func ReadLiveSubnetEnv(ctx context.Context, path string, timeout time.Duration) (subnetenv.Env, error) {
	env, err := subnetenv.Read(path)
	if err != nil {
		return env, err
	}
	sock := filepath.Join(filepath.Dir(path), SocketFile)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := NewSocketClient(sock).Status(ctx)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			err = errno // the client's error names the socket and run dir again
		}
		return env, fmt.Errorf("%w: the weft agent does not answer on %s (%v); %s may be left over from an agent that crashed",
			ErrStaleSubnetFile, sock, err, path)
	}
	if !s.Subnet.IsValid() {
		return env, fmt.Errorf("%w: the weft agent on %s holds no subnet yet, but %s says %s",
			ErrStaleSubnetFile, sock, path, env.Subnet)
	}
	if s.Subnet != env.Subnet {
		return env, fmt.Errorf("%w: the weft agent on %s holds subnet %s but %s says %s",
			ErrStaleSubnetFile, sock, s.Subnet, path, env.Subnet)
	}
	return env, nil
}
