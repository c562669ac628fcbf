// Package membership lets weft nodes find each other and lease their subnets
// by gossip (hashicorp/memberlist, SWIM), with no central store.
//
// # Lifecycle
//
//	m, err := membership.New(cfg)      // validate, load StateDir/leases.json
//	subnet, err := m.Start(ctx)        // join, claim a subnet, settle it
//	// … create the TUN for subnet …
//	err = m.Run(ctx, update)           // feed node.PeerSource until ctx ends, then leave
//
// # What each node announces
//
// Its memberlist metadata (meta.go: versioned, append-only) carries name,
// network, subnet with its claim order, data endpoint, overlay address and a
// flag word. Members memberlist reports alive become PeerInfo{State: "alive"}
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
// under its name, even at a new address, gets its subnet back.
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
// BenchmarkConvergence starts 50, 200 and 1000 members in one process.
// Memory grows with the square of the cluster there (every member keeps
// every other member and lease), and 1000 members with memberlist's LAN
// timing keep two cores busy, which is why "auto" (leases picked by the
// nodes, contests included) runs up to 200 members.
package membership
