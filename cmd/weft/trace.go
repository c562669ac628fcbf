package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/cli"
)

// cmdTrace attaches to the running node and prints one line per inner
// packet it handles, with its fate; --pcap also writes the packets to a
// pcap file (raw IP) for Wireshark.
func cmdTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft trace", "usage: weft trace [flags]\n\nFollows packets through the running node: one line per inner packet with its fate, until interrupted.")
	runDir := runDirFlag(fs)
	peer := fs.String("peer", "", "only packets to or from the peer `name`")
	host := fs.String("host", "", "only packets with this inner source or destination `IP`")
	proto := fs.String("proto", "", "only this `protocol`: tcp, udp, icmp, icmpv6")
	drops := fs.Bool("drops", false, "only dropped packets")
	pcapFile := fs.String("pcap", "", "also write the inner packets to this pcap `file`")
	count := fs.Int("count", 0, "stop after `n` packets (0: until interrupted)")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	filter, err := api.ParseTraceFilter(url.Values{"peer": {*peer}, "host": {*host}, "proto": {*proto}})
	if err != nil {
		return fmt.Errorf("--%w", err) // the filter's errors start with the flag's name
	}
	filter.DropsOnly = *drops
	if *count < 0 {
		return fmt.Errorf("--count %d: must not be negative", *count)
	}
	var pw *pcapgo.Writer
	if *pcapFile != "" {
		filter.Packets = true
		f, err := os.Create(*pcapFile)
		if err != nil {
			return fmt.Errorf("--pcap: %w", err)
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		pw = pcapgo.NewWriter(bw)
		if err := pw.WriteFileHeader(65536, layers.LinkTypeRaw); err != nil {
			return fmt.Errorf("--pcap: %w", err)
		}
	}

	body, err := api.NewClient(*runDir).Trace(ctx, filter)
	if err != nil {
		return err
	}
	defer body.Close()
	fmt.Fprintln(stderr, "tracing; Ctrl-C to stop")
	dec := json.NewDecoder(body)
	for n := 0; *count == 0 || n < *count; {
		var e api.TraceEvent
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil // interrupted
			}
			return fmt.Errorf("trace stream: %w", err)
		}
		if e.Lost > 0 {
			fmt.Fprintf(stderr, "(%d events lost so far: this reader is slower than the traffic; filter more)\n", e.Lost)
			continue
		}
		fmt.Fprintln(stdout, e.String())
		if pw != nil && len(e.Packet) > 0 {
			ci := gopacket.CaptureInfo{Timestamp: e.Time, CaptureLength: len(e.Packet), Length: len(e.Packet)}
			if err := pw.WritePacket(ci, e.Packet); err != nil {
				return fmt.Errorf("--pcap: %w", err)
			}
		}
		n++
	}
	return nil
}
