package status

import (
	"bytes"
	"context"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/haadm/haadm/lb"
)

// collectLBs reports every load balancer haadm wrote, each probed from its
// own node (front and backends), plus the controlPlaneEndpoint when none
// of them serves it.
func collectLBs(ctx context.Context, in *Inputs, t *topology, files map[string]func() hostFiles) []LoadBalancer {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	found := make([]*LoadBalancer, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			// A file proxying to haadm's upstream name, of whichever
			// engine runs there; without it, some other proxy of the node.
			for _, e := range lb.Engines() {
				if r := files[n]()[e.ConfPath()]; r.err == nil && bytes.Contains(r.data, []byte(lb.UpstreamName)) {
					found[i] = proxyLB(ctx, in, t, n, e, r.data)
					return
				}
			}
		})
	}
	var endpoint *LoadBalancer
	if t.endpointHP != "" && t.apiserver[t.endpointNode] != t.endpointHP {
		wg.Go(func() {
			// Probed from the endpoint's node when it is one, else from
			// a master, as the cluster's own clients would reach it.
			via := in.via(append([]string{t.endpointNode}, t.masters...)...)
			row := LoadBalancer{Node: t.endpointNode, Address: t.server, Backends: []Backend{}}
			if via == "" {
				row.Error = "no node connected to probe through"
			} else {
				res := in.probe(ctx, via, t.endpointHP, false)
				row.Ready = res.Ready
				if res.Err != nil {
					row.Error = res.Err.Error()
				}
			}
			endpoint = &row
		})
	}
	wg.Wait()

	rows := []LoadBalancer{}
	served := false
	for _, row := range found {
		if row == nil {
			continue
		}
		rows = append(rows, *row)
		served = served || t.servesEndpoint(*row)
	}
	if endpoint != nil && !served {
		rows = append(rows, *endpoint)
	}
	return rows
}

// proxyLB reads haadm's configuration of engine e on node and probes the
// listener and every backend from there.
func proxyLB(ctx context.Context, in *Inputs, t *topology, node string, e lb.Engine, conf []byte) *LoadBalancer {
	row := &LoadBalancer{Node: node, Backends: []Backend{}}
	listen, err := e.ParseListen(conf)
	if err != nil {
		row.Error = err.Error()
		return row
	}
	row.Listen = listen
	addrs, err := e.ParseBackends(conf)
	if err != nil {
		row.Error = err.Error()
	}
	front := listenProbeAddr(listen, t.ip[node])
	row.Address = "https://" + front
	row.Backends = make([]Backend, len(addrs))
	// From the node itself, whose files these are: a listener on loopback
	// is only that node's.
	via := node
	var wg sync.WaitGroup
	wg.Go(func() {
		res := in.probe(ctx, via, front, false)
		row.Ready = res.Ready
		if res.Err != nil && row.Error == "" {
			row.Error = res.Err.Error()
		}
	})
	for i, a := range addrs {
		wg.Go(func() {
			res := in.probe(ctx, via, a, false)
			b := Backend{Address: a, Up: res.Ready}
			if res.Err != nil {
				b.Error = res.Err.Error()
			}
			row.Backends[i] = b
		})
	}
	wg.Wait()
	return row
}

// listenProbeAddr turns an nginx listen address into one to connect to:
// a wildcard listener is probed on the node's address, the one other
// nodes use; a bare port means every address.
func listenProbeAddr(listen, nodeIP string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "", listen
	}
	if ip := net.ParseIP(host); host == "" || host == "*" || (ip != nil && ip.IsUnspecified()) {
		host = nodeIP
		if host == "" {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}

// servesEndpoint tells whether a load balancer is the one behind the
// controlPlaneEndpoint, whose probe then stands for the endpoint's.
func (t *topology) servesEndpoint(row LoadBalancer) bool {
	if sameServer(row.Address, t.server) {
		return true
	}
	_, port, _ := net.SplitHostPort(t.endpointHP)
	_, lport, err := net.SplitHostPort(strings.TrimPrefix(row.Address, "https://"))
	return err == nil && row.Node != "" && row.Node == t.endpointNode && lport == port
}

// markLBTargets names the load balancer a kubeconfig or ConfigMap points
// at when that is not the endpoint: the usual state halfway through a
// promotion, before kubeadm-config records the endpoint.
func markLBTargets(r *Report) {
	lbOf := func(server string) (string, bool) {
		for _, l := range r.LoadBalancers {
			if l.Node != "" && sameServer(server, l.Address) {
				return TargetLBPrefix + l.Node, true
			}
		}
		return "", false
	}
	for i, k := range r.Kubeconfigs {
		if t, ok := lbOf(k.Server); ok && k.Target == TargetOther {
			r.Kubeconfigs[i].Target = t
		}
	}
	for i, c := range r.ConfigMaps {
		if t, ok := lbOf(c.Server); ok && c.Target == TargetOther {
			r.ConfigMaps[i].Target = t
		}
	}
}
