package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/api"
)

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
	runDir := fs.String("run-dir", agent.DefaultConfig().RunDir, "run `directory` of the node to ask")
	if err := parseFlags(fs, rest, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := api.NewClient(*runDir)
	if verb == "release" {
		if err := c.Call(ctx, http.MethodPost, "/v1/leases/"+name+"/release", nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released the lease of %s; its subnet can be handed out again\n", name)
		return nil
	}
	var leases []api.Lease
	if err := c.Call(ctx, http.MethodGet, "/v1/leases", nil, &leases); err != nil {
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
