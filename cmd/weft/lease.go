package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/node"
)

// errNoGossip answers lease requests to a node without gossip.
var errNoGossip = errors.New("this node runs without gossip (--gossip-port 0): it has static subnets, not leases")

// handleLeases puts the lease table on the node's control socket; m is nil
// without gossip.
func handleLeases(n *node.Node, m *membership.Membership) {
	if m == nil {
		noGossip := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			node.WriteError(w, http.StatusConflict, errNoGossip)
		})
		n.Handle("/v1/leases", noGossip)
		n.Handle("/v1/leases/", noGossip)
		return
	}
	n.Handle("GET /v1/leases", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node.WriteJSON(w, http.StatusOK, m.Leases())
	}))
	n.Handle("POST /v1/leases/{name}/release", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Release(r.PathValue("name")); err != nil {
			code := http.StatusConflict
			if errors.Is(err, membership.ErrNoLease) {
				code = http.StatusNotFound
			}
			node.WriteError(w, code, err)
			return
		}
		node.WriteJSON(w, http.StatusOK, map[string]string{})
	}))
}

// cmdLease is `weft lease list` and `weft lease release NAME`.
func cmdLease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "release") {
		fmt.Fprintln(stderr, "usage: weft lease list [--run-dir DIR] | weft lease release NAME [--run-dir DIR]")
		return errUsage
	}
	verb, rest := args[0], args[1:]
	var name string
	if verb == "release" {
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			fmt.Fprintln(stderr, "weft lease release: name the node whose lease to free (see 'weft lease list')")
			return errUsage
		}
		name, rest = rest[0], rest[1:]
	}
	fs := newFlagSet("lease "+verb, stderr)
	runDir := fs.String("run-dir", node.DefaultConfig().RunDir, "run `directory` of the node to ask")
	if err := parseFlags(fs, rest, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if verb == "release" {
		if err := node.Call(ctx, *runDir, http.MethodPost, "/v1/leases/"+name+"/release", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released the lease of %s; its subnet can be handed out again\n", name)
		return nil
	}
	var leases []membership.Lease
	if err := node.Call(ctx, *runDir, http.MethodGet, "/v1/leases", nil, &leases); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUBNET\tENDPOINT\tLAST SEEN")
	for _, l := range leases {
		seen := "-"
		if !l.LastSeen.IsZero() {
			seen = time.Since(l.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Name, l.Subnet, l.Endpoint, seen)
	}
	return tw.Flush()
}
