package cni

// GC: release what no live attachment holds. Three sweeps, each going on
// past errors (they are joined into one code-999 error at the end):
//
//  1. every saved attachment of this network that the runtime no longer
//     lists is DELeted through its delegate and its record dropped;
//  2. GC is forwarded to the delegate and its IPAM plugin if they speak it
//     (plugins v1.10's host-local does; Debian's 1.1.1 plugins do not);
//  3. host-local's reservations that no listed attachment holds are freed
//     by weft-cni itself, under host-local's own lock: upstream host-local
//     had no GC for years, and leaked addresses ("no IP addresses
//     available") are the most common CNI complaint.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/subnetenv"
)

// GC releases every resource of this network that no attachment in the
// config's cni.dev/valid-attachments holds. A missing list means none is
// valid (what libcni sends without GC arguments, and what host-local does).
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	valid := map[types.GCAttachment]bool{}
	validIDs := map[string]bool{} // for host-local's older, container-ID-only files
	for _, a := range conf.ValidAttachments {
		valid[a] = true
		validIDs[strings.TrimSpace(a.ContainerID)] = true
	}

	st, unlock, err := openStore(conf.DataDir, true)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*p.cfg.DelegateTimeout)
	defer cancel()

	// 1: stale attachments.
	recs, errs := st.list()
	hostLocalDirs := map[string]bool{}
	var current *Delegate // a live attachment's delegate config, for 2
	for _, r := range recs {
		if r.Network != conf.Name {
			continue
		}
		d, err := decodeDelegate(r.Delegate)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if valid[types.GCAttachment{ContainerID: r.ContainerID, IfName: r.IfName}] {
			if dir := d.hostLocalDir(); dir != "" {
				hostLocalDirs[dir] = true
			}
			current = &d
			continue
		}
		netns := r.Netns
		if _, err := os.Stat(netns); netns != "" && err != nil {
			netns = "" // the sandbox is gone, as GC may assume
		}
		if err := p.replayDel(ctx, r, args.Path, netns, ""); err != nil {
			errs = append(errs, fmt.Errorf("stale attachment %s/%s: %w", r.ContainerID, r.IfName, err))
			continue
		}
		if err := st.remove(r.ContainerID, r.IfName); err != nil {
			errs = append(errs, err)
		}
		if dir := d.hostLocalDir(); dir != "" {
			hostLocalDirs[dir] = true
		}
	}

	// 2: forward GC. The delegate config is what ADD would build now, or
	// failing a subnet file a live attachment's saved one.
	d, err := p.gcDelegate(conf, current)
	if err != nil {
		errs = append(errs, err)
	}
	if d != nil {
		if dir := d.hostLocalDir(); dir != "" {
			hostLocalDirs[dir] = true
		}
		errs = append(errs, p.forwardGC(ctx, conf, *d, args)...)
	}

	// 3: host-local's leftovers.
	for dir := range hostLocalDirs {
		if err := sweepHostLocal(dir, valid, validIDs); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrInternal, "weft-cni: GC: "+err.Error(), "")
	}
	return nil
}

// gcDelegate is the delegate config GC forwards to and sweeps for.
func (p *Plugin) gcDelegate(conf *NetConf, saved *Delegate) (*Delegate, error) {
	sn, err := subnetenv.Read(conf.SubnetFile)
	if err == nil {
		d, err := conf.buildDelegate(sn)
		return &d, err
	}
	if saved != nil {
		d := *saved
		d.CNIVersion = conf.CNIVersion
		return &d, nil
	}
	// No subnet and no live attachment: enough to find host-local's dir.
	d, err := conf.buildDelegate(subnetenv.Env{})
	if err != nil {
		return nil, err
	}
	d.IPAM.Ranges, d.IPAM.Routes = nil, nil
	return &d, nil
}

// forwardGC runs GC on the delegate and its IPAM plugin, each only if it
// speaks the config's version. The bridge plugin does not forward GC to its
// IPAM plugin, so weft-cni does. A delegate not installed is skipped: there
// is nothing of its to collect through it.
func (p *Plugin) forwardGC(ctx context.Context, conf *NetConf, d Delegate, args *skel.CmdArgs) []error {
	if len(d.IPAM.Ranges) == 0 {
		return nil // no config a delegate would accept
	}
	d.CNIVersion = conf.CNIVersion
	va := slices.Clone(conf.ValidAttachments)
	if va == nil {
		va = []types.GCAttachment{}
	}
	d.ValidAttachments = &va
	raw, err := d.MarshalJSON()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, name := range d.plugins() {
		path, err := p.find(name, args.Path)
		if err != nil || !p.speaks(ctx, path, conf.CNIVersion) {
			continue
		}
		if _, err := p.run(ctx, name, "GC", raw, args); err != nil {
			errs = append(errs, errDelegate(name, "GC", err))
		}
	}
	return errs
}

// sweepHostLocal frees the reservations in host-local's dir for one network
// that no valid attachment holds. It takes host-local's lock (flock on
// dir/lock), touches only files named as an IP address, and leaves the lock
// and last_reserved_ip.* files alone. A reservation file holds
// "<containerID>\r\n<ifname>", or only the container ID (host-local before
// 0.8.6).
func sweepHostLocal(dir string, valid map[types.GCAttachment]bool, validIDs map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("host-local dir: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("host-local lock: %w", err)
	}
	defer lf.Close()
	if err := flock(lf, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("host-local lock: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue // released meanwhile
		}
		owner := strings.TrimSpace(string(b))
		id, ifName, hasIf := strings.Cut(owner, "\r\n")
		if hasIf && valid[types.GCAttachment{ContainerID: strings.TrimSpace(id), IfName: strings.TrimSpace(ifName)}] {
			continue
		}
		if !hasIf && validIDs[owner] {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
