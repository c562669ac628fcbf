// Package membership lets weft nodes find each other and lease their subnets
// by gossip (hashicorp/memberlist, SWIM), with no central store.
//
// # Lifecycle
//
//	m, err := membership.New(cfg)      // validate, load StateDir/leases.json
//	subnet, err := m.Start(ctx)        // join (waits for a seed), claim a subnet, settle it
//	// … create the TUN for subnet …
//	err = m.Run(ctx, update)           // feed node.PeerSource until ctx ends, then leave
//
// # Joining
//
// A node with seeds (Config.Join) claims nothing until one has answered:
// memberlist's Join does a push/pull with the seed, which brings the
// cluster's members and lease table, before it returns. Until then Start
// retries with jittered backoff, also trying a few members the lease file
// remembers, and JoinStatus says whom it tries and why that fails (a wrong
// gossip key reads "wrong cluster key?"). A node without seeds is the first
// of its cluster and claims at once. See join.go.
//
// # What each node announces
//
// Its memberlist metadata (meta.go: versioned, append-only) carries name,
// network, subnet with its claim order, data endpoint, overlay address and a
// flag word. Members memberlist reports alive become peer.Info{State: peer.Alive}
// (or "suspect", below); dead and left members stay in the peer set with
// that state, for status only: the node withdraws their routes. Announcements that do not check out are rejected,
// counted by reason (Stats) and logged once per node: metadata that does not
// parse (bad_meta), another network (wrong_network), a subnet outside ours
// (outside_network), a subnet a better claim holds (overlap), a second node
// with a live node's name (duplicate_name), a taken data endpoint
// (duplicate_endpoint), and lease records that do not check out (bad_lease).
//
// # Leases
//
// See lease.go (table, merge, conflict order) and claim.go (how a starting
// node picks, and how a crowd of nodes starting together spreads out). The
// table is shared by broadcasts and push/pull and kept in leases.json. A
// gone node's lease stays reserved for LeaseTTL after it was last seen alive;
// Release frees it earlier. Leases are keyed by node name: a node restarting
// under its name, even at a new address, gets its subnet back. Subnets of
// static peers (Config.Reserved) rank before every lease: never handed out,
// never routed to a member that announces them.
//
// Clocks: a record carries how long ago its owner was seen alive (SeenAgo),
// and the receiver turns that into a time on its own clock, so nodes whose
// clocks disagree by any amount still expire a lease at the same moment.
// Records without an age (older versions) count as seen MaxClockSkew later,
// never after now; tombstones, whose ReleasedAt is the releaser's clock,
// are kept MaxClockSkew longer; no time from the network lies ahead of now.
//
// The TTL is the cluster's: each node announces the TTL it uses in its
// metadata (v2) and uses that of the live member whose claim ranks first —
// the oldest lease, the same member on every node — announcing it in turn,
// so the value outlives the node that set it. A node whose --lease-ttl
// differs logs that it adopts the cluster's (before it claims, so it
// cannot impose its own by getting its old, first-ranked lease back).
//
// # State machine and driver
//
// The lease logic is a pure state machine, leaseState (state.go, claim.go):
// events (a member event, records, a tick) and the time go in, decisions
// come out (gossip a record, log, save the table, publish a peer set, our
// subnet is lost). It uses no memberlist, goroutine, clock or file, so tests
// run a thousand of them, skewed clocks and partitions in one process
// (state_test.go, sim_test.go). Membership is the driver around it:
// memberlist's callbacks (delegate.go), the maintain and rejoin goroutines
// (maintain.go), Start's waits, the lease file (store.go) and time.Now.
//
// # Failure detection
//
// With DefaultConfig memberlist runs its LAN timing (ProbeInterval 1s,
// ProbeTimeout 500ms, SuspicionMult 4, SuspicionMaxTimeoutMult 6). After a
// crash:
//
//   - some member probes the dead node within about a ProbeInterval (each of
//     the n members probes one member per interval, in shuffled rounds);
//   - the probe fails after the direct timeout and the indirect pings, by
//     the end of that interval: the node is suspect about 1–2 s in;
//   - it is declared dead when the suspicion timeout runs out. That is
//     SuspicionMult × max(1, log10 n) × ProbeInterval = 4 s up to 10 members
//     (8 s at 100, 12 s at 1000) once two other members have confirmed the
//     suspicion by failing their own probes, up to 6× that without
//     confirmations; in a cluster of five they come within a few seconds.
//
// So a crashed node leaves every peer set about 5–7 s after the crash in a
// small cluster, 10 s or more from some hundred members on
// (BenchmarkFailureDetection measures it). A node that stops with SIGTERM
// (Run's context ends) leaves gracefully and is "left" everywhere at once.
//
// memberlist (v0.7.0) does not tell its delegates when it suspects a member
// (Node.State is filled in only for MergeDelegate). So "suspect" here is our
// own view: a member memberlist still lists that we have not heard from
// (an answered probe or an event) for two rounds of our probes, which
// reach every member once per round. Mostly that is a member we cannot
// reach while others still can; a crashed member is usually dead before.
//
// # Partitions
//
// memberlist never probes members it declared dead, so two halves of a
// healed partition would stay apart. Every RejoinInterval each node contacts
// seeds it does not see alive and a few gone members that still hold a
// lease, which merges the halves. If both halves leased one subnet to
// different nodes, the claim that ranks first keeps it and Run returns
// ErrSubnetLost on the other node, which must restart to lease another.
//
// # Scale
//
// BenchmarkConvergence starts members in one process on loopback with
// memberlist's LAN timing. docs/performance.md has its measured run: 50
// and 200 members with requested subnets (--subnet) all saw each other, and
// 50 members leasing by gossip at once settled on distinct subnets (13 lost
// a contest and picked again); with 200 members leasing at once on an
// overloaded two-core machine, gossip took longer than the settle window
// and a node lost its subnet after it had settled. Memory grows with the
// square of the cluster there (every member keeps every other member and
// lease). Larger clusters are the subject of the cluster-size work, which
// starts from TestThousandMembers: the state machine alone, no memberlist.
package membership
