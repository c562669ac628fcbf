package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
)

// cmdKeygen prints a new cluster key, or writes it to a new 0600 file.
func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stderr)
	out := fs.String("out", "", "write the key to this new `file` (mode 0600) instead of stdout")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	key, err := encap.GenerateKey()
	if err != nil {
		return err
	}
	line := encap.FormatKey(key) + "\n"
	if *out == "" {
		_, err := io.WriteString(stdout, line)
		return err
	}
	// O_EXCL: never overwrite a key a cluster may already use.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stderr, "wrote a new cluster key (id %d) to %s; copy it to every node and start them with --key-file %s\n",
		encap.KeyID(key), *out, *out)
	return nil
}

const keyUsage = `usage: weft key list [--run-dir DIR]
       weft key add FILE [--run-dir DIR]    accept a new cluster key (FILE as 'weft keygen --out' writes it)
       weft key use ID [--run-dir DIR]      send with the held key ID (every node must hold it first)
       weft key remove ID [--run-dir DIR]   stop accepting key ID (not the one in use)`

// cmdKey changes the cluster keys of the running node (data plane and
// gossip together). The changes live in the node's memory only: the key
// file must be changed to match, or a restart undoes them.
func cmdKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keyUsage)
		return errUsage
	}
	verb, rest := args[0], args[1:]
	var arg string
	switch verb {
	case "list":
	case "add", "use", "remove":
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			fmt.Fprintf(stderr, "weft key %s: missing %s\n%s\n", verb, map[bool]string{true: "FILE", false: "ID"}[verb == "add"], keyUsage)
			return errUsage
		}
		arg, rest = rest[0], rest[1:]
	default:
		fmt.Fprintln(stderr, keyUsage)
		return errUsage
	}
	fs := newFlagSet("key "+verb, stderr)
	runDir := fs.String("run-dir", agent.DefaultConfig().RunDir, "run `directory` of the node to change")
	if err := parseFlags(fs, rest, stderr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ans api.KeyAnswer
	c := api.NewClient(*runDir)
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
			use := "accepts"
			if id == s.Encryption.Primary {
				use = "accepts, sends"
			}
			fmt.Fprintf(tw, "%d\t%s\n", id, use)
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
		if err := c.Call(ctx, http.MethodPost, "/v1/keys", api.KeyRequest{Key: encap.FormatKey(keys[0])}, &ans); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d added: the node accepts it and still sends with its old key\n", ans.ID)
	case "use":
		if err := c.Call(ctx, http.MethodPost, "/v1/keys/"+arg+"/use", nil, &ans); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the node now sends with key %d\n", ans.ID)
	case "remove":
		if err := c.Call(ctx, http.MethodDelete, "/v1/keys/"+arg, nil, &ans); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d removed: packets and gossip under it are refused\n", ans.ID)
	}
	fmt.Fprintln(stderr, "this changes the running node only: change its --key-file to match (the key it sends with on the first line), or a restart undoes it")
	return nil
}
