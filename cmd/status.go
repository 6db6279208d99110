package cmd

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/status"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	var output string
	var access accessConfig
	var probeTimeout time.Duration
	var nodes []string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the whole control plane: etcd, apiservers, certs, kubeconfigs, LB; exit 0 only when HA",
		Long: `status inspects every node in parallel and prints etcd members, apiservers
(readiness, certificate SANs and expiry), the server of every kubeconfig and of
the kube-proxy and cluster-info ConfigMaps, leader leases, labels and taints,
the load balancer, and a verdict: ha, degraded (with reasons) or single-master.

Exit codes: 0 ha, 1 degraded, 2 single-master, 3 the API could not be read.
The JSON and YAML schema is documented in status/SCHEMA.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "table", "json", "yaml":
			default:
				return fmt.Errorf("-o %q: use table, json or yaml", output)
			}
			if err := access.apply(cmd, g); err != nil {
				return err
			}
			// status writes no log file; its warnings go to stderr,
			// away from the report on stdout.
			log := newProgress(cmd, g, io.Discard)
			o := status.GatherOptions{
				Dial:         node.SSHDialer(sshOptions(g, log)),
				Extra:        nodes,
				FirstMaster:  g.firstMaster,
				ProbeTimeout: probeTimeout,
			}
			// Only a usable client goes in: a nil *Clientset in the
			// interface would not be nil. Without one the report says the
			// API could not be read.
			if kube, err := kubeClient(g); err == nil {
				o.Kube = kube
			}
			r := status.Gather(cmd.Context(), o)
			if err := status.Render(cmd.OutOrStdout(), r, output); err != nil {
				return err
			}
			if code := status.ExitCode(r); code != 0 {
				return &ExitError{Code: code, Err: errors.New("")}
			}
			return nil
		},
	}
	access.register(c.Flags())
	c.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	c.Flags().DurationVar(&probeTimeout, "probe-timeout", status.DefaultProbeTimeout, "bound for each single probe and each SSH login; a dead node costs about this much")
	c.Flags().StringSliceVar(&nodes, "nodes", nil, "nodes to inspect besides those the API lists (when the API is down: the masters, by their ssh_config names)")
	return c
}
