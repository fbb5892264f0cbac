// Command parley runs the Parley server and its helper commands. It is the
// only place that composes the components and the only place that exits
// the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Parley: self-hosted video calls, chat, RTMP ingest and TURN in one binary.

Usage:
  parley [--config FILE] [--KEY=VALUE ...]     run the server (dev mode without a config file)
  parley config example                        print a commented sample configuration
  parley config check --config FILE            load and validate a configuration
  parley config keys                           list every key with its PARLEY_* variable
  parley token create [--room R] --identity I [--name N] [--ttl 1h] [--grant publish,subscribe,chat]
  parley turn [--config FILE]                  run only the TURN server
  parley turn credentials --user U [--ttl 1h]  print TURN REST credentials as an RTCIceServer (JSON)
  parley turn check [--transport udp|tcp|tls]  allocate and relay through the configured TURN server
  parley ingress create --room R --name N      stream key for OBS (RTMP and WHIP); also list, revoke ID
  parley recording list [--room R]            recordings, through the running server's admin API; also start|stop --room R
  parley restream start --room R --url U       stream a meeting live to an RTMP URL (or RESTREAM_URL); also stop|status --room R
  parley cluster nodes|drain|undrain [--node ID]   cluster mode: list live nodes, stop/resume placing rooms on one
  parley load --key K --secret S [--publishers 1] [--subscribers 10] [--duration 20s]
  parley version

Every configuration key is also a flag (--sfu.udp_port=7882) and an
environment variable (PARLEY_SFU_UDP_PORT=7882). Precedence: defaults, the
YAML file, PARLEY_* variables, flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stdout, usage)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; tests call it directly.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "--help":
			return flag.ErrHelp
		case "version":
			fmt.Fprintln(stdout, "parley", version)
			return nil
		case "config":
			return configCommand(ctx, args[1:], environ, stdout)
		case "token":
			return tokenCommand(args[1:], environ, stdout)
		case "turn":
			return turnCommand(ctx, args[1:], environ, stdout, stderr)
		case "ingress":
			return ingressCommand(ctx, args[1:], environ, stdout)
		case "recording":
			return recordingCommand(ctx, args[1:], environ, stdout)
		case "restream":
			return restreamCommand(ctx, args[1:], environ, stdout)
		case "cluster":
			return clusterCommand(ctx, args[1:], environ, stdout)
		case "load":
			return loadCommand(ctx, args[1:], stdout)
		}
	}
	return serveCommand(ctx, args, environ, stdout, stderr)
}
