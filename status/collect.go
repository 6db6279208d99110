package status

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// Collect inspects the cluster and returns the report, verdict included.
// It never fails: whatever it cannot read is reported as an error in the
// row concerned, and turns the verdict to degraded.
//
// Everything runs at once: the API calls, etcd, the file reads on every
// node; the HTTPS probes start as soon as the API has said where the
// apiservers are. Every single call is bounded by Inputs.ProbeTimeout, so a
// dead node costs about one or two timeouts in total, not one per check.
func Collect(ctx context.Context, in Inputs) *Report {
	started := in.now()
	t0 := time.Now()

	apiF := async(func() *apiData { return fetchAPI(ctx, &in) })
	etcdF := async(func() Etcd { return collectEtcd(ctx, &in) })
	files := map[string]func() hostFiles{}
	for name, h := range in.Hosts {
		files[name] = async(func() hostFiles { return readHostFiles(ctx, &in, h) })
	}
	for name, login := range in.Late {
		files[name] = async(func() hostFiles {
			h, err := login()
			if err != nil {
				return nil // unreachable: unreachableRows says so
			}
			return readHostFiles(ctx, &in, h)
		})
	}
	connected := connectedNames(&in)

	api := apiF()
	early := newTopology(api, nil, connected, in.FirstMaster)
	probes := map[string]func() APIServer{}
	probeMasters := func(t *topology) {
		for _, m := range t.masters {
			if probes[m] == nil {
				probes[m] = async(func() APIServer { return probeAPIServer(ctx, &in, t, m) })
			}
		}
	}
	probeMasters(early)
	lbsF := async(func() []LoadBalancer { return collectLBs(ctx, &in, early, files) })

	etcd := etcdF()
	// etcd may know masters the API does not (a half-promoted node, or no
	// API at all): probe those too, later.
	topo := newTopology(api, &etcd, connected, in.FirstMaster)
	probeMasters(topo)

	r := &Report{
		SchemaVersion: SchemaVersion,
		Endpoint:      topo.endpoint,
		Server:        topo.server,
		API:           API{Reachable: api.nodesErr == nil},
		Etcd:          etcd,
		Nodes:         nodeRows(api.nodes),
		ConfigMaps:    configMapRows(topo, api),
		Leases:        leaseRows(api),
		Lock:          lockRow(api, started),
	}
	if r.Endpoint == "" {
		r.FirstMaster = topo.firstMaster
	}
	if api.nodesErr != nil {
		r.API.Error = api.nodesErr.Error()
	}
	if api.cfgErr != nil {
		r.API.KubeadmConfigError = api.cfgErr.Error()
	}
	r.Unreachable = unreachableRows(&in, topo)
	r.APIServers = make([]APIServer, 0, len(topo.masters))
	for _, m := range topo.masters {
		r.APIServers = append(r.APIServers, probes[m]())
	}
	done := map[string]hostFiles{}
	for name, f := range files {
		if got := f(); got != nil {
			done[name] = got
		}
	}
	r.Kubeconfigs = kubeconfigRows(topo, done)
	r.LoadBalancers = lbsF()
	markLBTargets(r)
	// Judge reads the start time: certificates expire relative to it.
	r.Timing = Timing{Started: rfc3339(started), WallMs: time.Since(t0).Milliseconds()}
	r.Verdict, r.Reasons = Judge(r)
	return r
}

// connectedNames are the nodes the caller connected to or tried to.
func connectedNames(in *Inputs) []string {
	var names []string
	for n := range in.Hosts {
		names = append(names, n)
	}
	for n := range in.Unreachable {
		names = append(names, n)
	}
	for n := range in.Late {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unreachableRows are the nodes whose files could not be checked: those
// the caller could not dial, and masters it did not even try.
func unreachableRows(in *Inputs, t *topology) []NodeError {
	rows := []NodeError{}
	for _, n := range connectedNames(in) {
		err, ok := in.Unreachable[n]
		if login := in.Late[n]; login != nil {
			_, err = login()
			ok = err != nil
		}
		if ok {
			msg := "unreachable"
			if err != nil {
				// node's errors name the node, and so does the row.
				msg += ": " + strings.TrimPrefix(err.Error(), "node "+n+": ")
			}
			rows = append(rows, NodeError{Node: n, Error: msg})
		}
	}
	for _, m := range t.masters {
		_, connected := in.Hosts[m]
		_, tried := in.Unreachable[m]
		_, late := in.Late[m]
		if !connected && !tried && !late {
			rows = append(rows, NodeError{Node: m, Error: "not connected: haadm opened no SSH connection to this control-plane node"})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Node < rows[j].Node })
	return rows
}

// async runs f in a goroutine; the returned function waits for its result
// and may be called any number of times, from any goroutine.
func async[T any](f func() T) func() T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	var once sync.Once
	var v T
	return func() T {
		once.Do(func() { v = <-ch })
		return v
	}
}
