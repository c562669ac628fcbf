package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/cli"
)

// cmdKeygen prints a new cluster key, or writes it to a new 0600 file.
func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft keygen", "usage: weft keygen [--out FILE]\n\nMakes a new cluster key and prints it, or writes it to a new file (mode 0600, missing directories 0700).")
	out := fs.String("out", "", "write the key to this new `file` (mode 0600) instead of stdout")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	key, err := encap.GenerateKey()
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := fmt.Fprintln(stdout, encap.FormatKey(key))
		return err
	}
	if err := encap.WriteKeyFile(*out, key); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stderr, "wrote a new cluster key (id %d) to %s; copy it to every node and start them with --key-file %s\n",
		encap.KeyID(key), *out, *out)
	return nil
}

const keyUsage = `usage: weft key list [--run-dir DIR]
       weft key add FILE [--run-dir DIR]    accept a new cluster key (FILE as 'weft keygen --out' writes it)
       weft key use ID [--run-dir DIR]      send with the held key ID (every node must hold it first)
       weft key remove ID [--run-dir DIR]   stop accepting key ID (not the one in use)

Changes the running node's cluster keys (data plane and gossip); change its --key-file to match.`

// keyVerbs are weft key's verbs and the names of their arguments.
var keyVerbs = map[string]string{"list": "", "add": "FILE", "use": "ID", "remove": "ID"}

// cmdKey changes the cluster keys of the running node (data plane and
// gossip together). The changes live in the node's memory only: the key
// file must be changed to match, or a restart undoes them.
func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, arg, c, err := parseVerb("key", args, keyVerbs, keyUsage, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var id int
	switch verb {
	case "list":
		s, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if !s.Encryption.Enabled {
			fmt.Fprintln(stdout, "no keys: this node runs --insecure")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSE")
		for _, id := range s.Encryption.KeyIDs {
			fmt.Fprintf(tw, "%d\taccepts%s\n", id, map[bool]string{true: ", sends"}[id == s.Encryption.Primary])
		}
		return tw.Flush()
	case "add":
		keys, err := encap.ReadKeyFile(arg)
		if err != nil {
			return err
		}
		if len(keys) != 1 {
			return fmt.Errorf("%s holds %d keys: give a file with the one key to add", arg, len(keys))
		}
		if id, err = c.AddKey(ctx, encap.FormatKey(keys[0])); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d added: the node accepts it and still sends with its old key\n", id)
	case "use":
		if id, err = c.UseKey(ctx, arg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the node now sends with key %d\n", id)
	case "remove":
		if id, err = c.RemoveKey(ctx, arg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d removed: packets and gossip under it are refused\n", id)
	}
	fmt.Fprintln(stderr, "this changes the running node only: change its --key-file to match (the key it sends with on the first line), or a restart undoes it")
	return nil
}
