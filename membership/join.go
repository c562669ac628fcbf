package membership

// Joining the cluster. A node given seeds (Config.Join) claims nothing until
// one has answered: memberlist's Join does a push/pull with the seed, which
// merges the cluster's member list and lease table into ours
// (MergeRemoteState) before Join returns, so after a successful Join our
// view holds every lease the seed knows, our own previous one included. A
// node that claimed from an empty view instead would lease the first free
// subnet of that view — the first node's.
//
// Until a seed answers, Start retries with jittered exponential backoff
// (JoinRetry doubling up to JoinRetryMax, each wait drawn from its upper
// half, so nodes restarted together do not retry in step), and JoinStatus
// says whom it tries and why that fails, in words an operator can act on:
// a refused connection, a timeout, a name that does not resolve, or a gossip
// key that does not match the seed's ("wrong cluster key?").
//
// Besides the seeds, a node tries the gossip addresses that its lease file
// remembers of other nodes (a few, at random, per attempt), so a cluster
// whose seed is gone can still be joined by nodes that were members before,
// and any member that contacted us meanwhile.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/weftnet/weft/peer"
)

// maxKnown bounds the remembered members tried per join attempt, beside the
// seeds: memberlist's Join contacts every target it is given in turn.
const maxKnown = 3

// JoinStatus is how joining the cluster goes; `weft status` shows it while
// the node is joining.
type JoinStatus struct {
	// Joined: a seed answered and our lease table is synced with the
	// cluster's; the node is claiming or holds its subnet.
	Joined bool `json:"joined"`
	// Seeds are the --join seeds; Known the remembered members also tried.
	Seeds []string `json:"seeds"`
	Known []string `json:"known,omitempty"`
	// LastError says why the last attempt failed, in plain words.
	LastError string `json:"last_error,omitempty"`
	// Since is when joining began; Attempts counts the attempts so far.
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
}

// JoinStatus returns how joining goes; see the type.
func (m *Membership) JoinStatus() JoinStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	js := m.joinSt
	js.Seeds, js.Known = slices.Clone(js.Seeds), slices.Clone(js.Known)
	return js
}

// join contacts the seeds until one answers (see the top of this file); a
// node without seeds is the first of its cluster and returns at once.
func (m *Membership) join(ctx context.Context) error {
	if len(m.seeds) == 0 {
		if m.learnFirst {
			m.log.Warn("no seeds to learn leases from: this node is the first of its cluster, claiming from an empty table")
		}
		m.mu.Lock()
		m.joinSt.Joined = true
		m.mu.Unlock()
		return nil
	}
	backoff := m.cfg.JoinRetry
	for {
		targets := m.joinTargets()
		n, err := m.tryJoin(ctx, targets)
		if n > 0 {
			m.mu.Lock()
			m.joinSt.Joined, m.joinSt.LastError = true, ""
			m.mu.Unlock()
			m.log.Info("joined the cluster", "through", m.answered(targets), "seeds", m.seeds)
			if err := m.checkEndpoint(); err != nil {
				return err
			}
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("joining the cluster (seeds %s): %w; last error: %s",
				strings.Join(m.seeds, ", "), ctx.Err(), m.JoinStatus().LastError)
		}
		why := describeJoinError(err)
		wait := jitter(backoff)
		m.mu.Lock()
		m.joinSt.LastError = why
		m.joinSt.Attempts++
		m.mu.Unlock()
		m.log.Warn("no seed answered; not claiming a subnet until one does", "seeds", m.seeds, "retry_in", wait.Round(time.Millisecond).String(), "err", why)
		backoff = min(2*backoff, m.cfg.JoinRetryMax)
		select {
		case <-ctx.Done():
			return fmt.Errorf("joining the cluster (seeds %s): %w; last error: %s", strings.Join(m.seeds, ", "), ctx.Err(), why)
		case <-time.After(wait):
		}
	}
	return m.resolveNameConflict(ctx)
}

// answered names the members among targets that a join reached (memberlist
// tries every target and says only how many answered); targets it cannot
// match, DNS names say, are listed as given. It reads our own member table:
// the *Node values memberlist.Members returns are updated under memberlist's
// lock, so reading them here would race.
func (m *Membership) answered(targets []string) []string {
	byAddr := map[string]string{}
	m.mu.Lock()
	for name, mb := range m.st.members {
		if mb.state == peer.Alive {
			byAddr[mb.gossip.String()] = name
		}
	}
	m.mu.Unlock()
	var names []string
	for _, t := range targets {
		if name, ok := byAddr[t]; ok && name != m.cfg.Name {
			names = append(names, name+" ("+t+")")
		}
	}
	if len(names) == 0 {
		return targets
	}
	return names
}

// checkEndpoint refuses to go on when a live member of another name
// announces our data endpoint or gossip address: the join's push/pull has
// merged the cluster's members into our table (memberlist's NotifyConflict
// covers names only). Gossip and data sent to that member would reach us.
func (m *Membership) checkEndpoint() error {
	m.mu.Lock()
	name, ep, ok := m.st.endpointTwin()
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return fmt.Errorf("%w: node %q announces %s as well", ErrEndpointInUse, name, ep)
}

// tryJoin runs one memberlist Join, which cannot be interrupted (it waits up
// to TCPTimeout per target), but returns early when ctx ends.
func (m *Membership) tryJoin(ctx context.Context, targets []string) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() { // finishes by itself, at worst against a shut-down memberlist
		n, err := m.ml.Join(targets)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// joinTargets lists the seeds, a few remembered members at random and the
// members that contacted us meanwhile (a Join with them syncs us as well).
func (m *Membership) joinTargets() []string {
	out := slices.Clone(m.seeds)
	known := slices.Clone(m.known)
	rand.Shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	for _, k := range known {
		if len(out) >= len(m.seeds)+maxKnown {
			break
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	m.mu.Lock()
	live, _ := m.st.goneHolders()
	m.mu.Unlock()
	for ap := range live {
		if s := ap.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// knownMembers returns the gossip addresses of the other nodes in the lease
// records loaded from the lease file, but self.
func knownMembers(ls []Lease, self string) []string {
	var out []string
	for _, l := range ls {
		if l.Name != self && l.Gossip.IsValid() && !slices.Contains(out, l.Gossip.String()) {
			out = append(out, l.Gossip.String())
		}
	}
	return out
}

// jitter returns a wait drawn uniformly from [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2)
}

// keyErrors are what memberlist reports when the two sides' gossip keys
// differ, or one side has none.
var keyErrors = []string{
	"no installed keys could decrypt",
	"remote state is encrypted and encryption is not configured",
	"encryption is configured but remote state is not encrypted",
	"message authentication failed",
}

// describeJoinError turns memberlist's Join error (one "failed to join
// <addr>: <why>" line per target) into plain words, one clause per target.
func describeJoinError(err error) string {
	if err == nil {
		return "no seed answered"
	}
	var parts []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasSuffix(line, "error occurred:") || strings.HasSuffix(line, "errors occurred:") {
			continue
		}
		parts = append(parts, describeOne(line))
	}
	if len(parts) == 0 {
		parts = []string{oneLine(err)}
	}
	return "no seed answered: " + strings.Join(parts, "; ")
}

func describeOne(line string) string {
	target, why := "", line
	if rest, ok := strings.CutPrefix(line, "failed to join "); ok {
		if i := strings.Index(rest, ": "); i >= 0 {
			target, why = rest[:i], rest[i+2:]
		}
	}
	lower := strings.ToLower(why)
	switch {
	case slices.ContainsFunc(keyErrors, func(k string) bool { return strings.Contains(lower, k) }):
		why = "wrong cluster key? (" + why + ")"
	case strings.Contains(lower, "connection refused"):
		why = "connection refused"
	case strings.Contains(lower, "no route to host"):
		why = "no route to host"
	case strings.Contains(lower, "network is unreachable"):
		why = "network is unreachable"
	case strings.Contains(lower, "i/o timeout"), strings.Contains(lower, "deadline exceeded"):
		why = "timed out"
	case strings.Contains(lower, "no such host"):
		why = "name does not resolve (no such host)"
	}
	if target == "" {
		return why
	}
	return target + ": " + why
}

// dropSelf removes our own gossip address from addrs: a shared seed list,
// or a lease file's record of our previous run, may name it.
func (m *Membership) dropSelf(addrs []string) []string {
	return slices.DeleteFunc(addrs, func(s string) bool {
		ap, err := netip.ParseAddrPort(s)
		return err == nil && netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == m.gossip
	})
}
