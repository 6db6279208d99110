package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
	"github.com/haadm/haadm/status"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	var output string
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
			r := collectStatus(cmd.Context(), g, probeTimeout, nodes)
			if err := status.Render(cmd.OutOrStdout(), r, output); err != nil {
				return err
			}
			if code := status.ExitCode(r); code != 0 {
				return &ExitError{Code: code, Err: errors.New("")}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	c.Flags().DurationVar(&probeTimeout, "probe-timeout", status.DefaultProbeTimeout, "bound for each single probe; a dead node costs at most this")
	c.Flags().StringSliceVar(&nodes, "nodes", nil, "nodes to inspect besides those the API lists (when the API is down: the masters, by their ssh_config names)")
	return c
}

func collectStatus(ctx context.Context, g *globalFlags, probeTimeout time.Duration, extra []string) *status.Report {
	in := status.Inputs{ProbeTimeout: probeTimeout, FirstMaster: g.firstMaster, Unreachable: map[string]error{}}
	kube, _, err := kubeClient(g)
	if err == nil {
		in.Kube = kube
	}
	var names []string
	ips := map[string]string{}
	var masters []string
	if kube != nil {
		lctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
		list, lerr := kube.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
		cancel()
		if lerr == nil {
			for _, n := range list.Items {
				names = append(names, n.Name)
				for _, a := range n.Status.Addresses {
					if a.Type == corev1.NodeInternalIP {
						ips[n.Name] = a.Address
						break
					}
				}
				if _, ok := n.Labels[phases.ControlPlaneLabel]; ok {
					masters = append(masters, n.Name)
				}
			}
		}
	}
	for _, n := range extra {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	// Without the API nobody says which nodes are masters: take the ones the
	// operator named, so etcd and the apiservers are still inspected.
	if len(masters) == 0 {
		masters = slices.Clone(extra)
	}
	sort.Strings(masters)
	hosts, derr := node.DialAll(ctx, names, 2*probeTimeout, node.SSHDialer(sshOptions(g)))
	for n, h := range hosts {
		if _, ok := ips[n]; ok {
			continue
		}
		if a, ok := h.(interface{ Addr() string }); ok {
			if host, _, err := net.SplitHostPort(a.Addr()); err == nil {
				ips[n] = host
			}
		}
	}
	var ue *node.UnreachableError
	if errors.As(derr, &ue) {
		for n, e := range ue.Errs {
			in.Unreachable[n] = e
		}
	}
	in.Hosts = hosts
	in.Etcd = func(ctx context.Context) (*clientv3.Client, error) {
		var eps []string
		from := ""
		for _, m := range masters {
			eps = append(eps, "https://"+net.JoinHostPort(ips[m], "2379"))
			if _, ok := hosts[m]; ok && from == "" {
				from = m
			}
		}
		if from == "" {
			return nil, errors.New("no control-plane node is reachable over SSH")
		}
		return phases.NewEtcdClient(ctx, hosts, ips, from, eps)
	}
	r := status.Collect(ctx, in)
	_ = node.CloseAll(hosts)
	return r
}
