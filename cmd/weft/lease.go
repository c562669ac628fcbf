package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

const leaseUsage = `usage: weft lease list [--run-dir DIR]
       weft lease release NAME [--run-dir DIR]   free the lease of node NAME, which is gone

Shows or edits the cluster's subnet lease table through the running node.`

// leaseVerbs are weft lease's verbs and the names of their arguments.
var leaseVerbs = map[string]string{"list": "", "release": "NAME"}

// cmdLease is `weft lease list` and `weft lease release NAME`.
func cmdLease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, name, c, err := parseVerb("lease", args, leaseVerbs, leaseUsage, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if verb == "release" {
		if err := c.ReleaseLease(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "released the lease of %s; its subnet can be handed out again\n", name)
		return nil
	}
	leases, err := c.Leases(ctx)
	if err != nil {
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
