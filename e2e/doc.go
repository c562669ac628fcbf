// Package e2e holds weft's end-to-end tests: the real weft binary, built once
// by TestMain, runs on hosts made of Linux network namespaces (package lab)
// and the tests pass traffic through it and read its status, the way an
// operator would. It is the third tier of weft's tests ("three tiers of tests" in shared/STYLE.md),
// above the wire-format tests and the in-process simulated network.
//
// Data-path tests run once per TUN driver ("wireguard" and "water"); every
// test builds its own lab, named we<pid mod 10000><test><driver>, so labs of different
// tests and test processes do not collide and a crashed run's leftovers are
// recognisable (lab.Cleanup removes them). Nothing touches the root
// namespace; all traffic stays inside the lab.
//
// The tests need root, /dev/net/tun and the tools ip, ethtool and ping. They
// skip without them, except under CI=true, where they fail:
//
//	sudo go test ./e2e/ -count=1 -v
//	sudo CI=true go test ./e2e/ -count=1
//
// The files follow the topics: traffic_test.go (ping, status, TCP, UDP, MTU,
// unreachable destinations), spoof_test.go (what a node refuses from the wire
// and from its own host), security_test.go (sealed refusals, replays, the
// wrong key), flood_test.go (a bounded flood), keys_test.go (key rotation on
// running nodes), membership_test.go (gossip, leases, partitions),
// path_test.go (path probes, weft doctor), trace_test.go (weft trace, pcap, a
// stalled reader), metrics_test.go (Prometheus), cni_test.go (weft-cni with
// cnitool and the reference plugins; harness in cni_lab_test.go),
// hostaddr_test.go (a pod reaching another node's underlay address),
// lifecycle_test.go (stop, crash, restart, a second weft, prerequisites
// checked before joining), flags_test.go (bad command lines, help) and
// image_test.go (the registry-free image, built with Podman);
// helpers_test.go is the shared harness.
package e2e
