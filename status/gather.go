package status

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// GatherOptions say how Gather finds the nodes and logs in to them.
type GatherOptions struct {
	// Kube reads the API. Nil when there is no client at all (no
	// kubeconfig): Gather then inspects Extra alone, and the report says
	// the API could not be read.
	Kube kubernetes.Interface
	// Dial logs in to a node by name (node.SSHDialer in haadm). Required.
	Dial node.DialFunc
	// Extra are nodes to inspect besides those the API lists. When no
	// node is labelled control-plane (the API is down) they are taken as
	// the masters, so that etcd, whose members name the other masters, is
	// still reached.
	Extra []string
	// FirstMaster is the existing control-plane node, as Inputs.FirstMaster
	// says; empty means the oldest labelled node. Its etcd client
	// credentials are tried first.
	FirstMaster string
	// ProbeTimeout bounds every probe, as Inputs.ProbeTimeout, and also
	// listing the nodes and each SSH login: a node that is down costs one
	// timeout, spent while the rest is inspected.
	ProbeTimeout time.Duration
}

// Gather is all of `haadm status` between its flags and its output: it
// lists the nodes, logs in to each of them and to Extra, in parallel,
// builds the etcd client (tunnelled through SSH, see etcdm.Connect),
// collects the report and closes every connection. Like Collect it never
// fails: whatever it cannot reach is in the report.
//
// Collect starts once the logins that were going to succeed have (see
// settle), not when the last has failed: a dead node's login timing out
// overlaps its apiserver's and its etcd member's probes, so it costs one
// timeout, not three.
func Gather(ctx context.Context, o GatherOptions) *Report {
	in := Inputs{Kube: o.Kube, FirstMaster: o.FirstMaster, ProbeTimeout: o.ProbeTimeout, Unreachable: map[string]error{}}

	nodes := listNodes(ctx, o.Kube, in.timeout())
	var names []string
	ips := map[string]string{}
	for _, n := range nodes {
		names = append(names, n.Name)
		if n.IP != "" {
			ips[n.Name] = n.IP
		}
	}
	for _, n := range o.Extra {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}

	dials, ended := startDials(ctx, names, in.timeout(), o.Dial)
	defer func() {
		for _, d := range dials {
			if h, err := d.result(); err == nil {
				_ = h.Close()
			}
		}
	}()
	masters := etcdMasters(nodes, o.Extra, o.FirstMaster)
	in.Hosts, in.Late = settle(dials, ended, masters, in.Unreachable)
	for name, h := range in.Hosts {
		if ips[name] == "" {
			if ip := sshAddress(h); ip != "" {
				ips[name] = ip
			}
		}
	}
	in.Etcd = etcdThroughSSH(in.Hosts, ips, masters)
	return Collect(ctx, in)
}

// dialing is one SSH login under way.
type dialing struct {
	name string
	done chan struct{}
	host node.Host
	err  error
	took time.Duration
}

func (d *dialing) result() (node.Host, error) {
	<-d.done
	return d.host, d.err
}

// startDials logs in to every node at once, each login bounded by timeout
// with no grace (node.DialBounded): a status must answer on time. ended
// receives each login as it ends.
func startDials(ctx context.Context, names []string, timeout time.Duration, dial node.DialFunc) (dials []*dialing, ended <-chan *dialing) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	ch := make(chan *dialing, len(names))
	for _, name := range names {
		d := &dialing{name: name, done: make(chan struct{})}
		go func() {
			start := time.Now()
			d.host, d.err = node.DialBounded(ctx, name, timeout, 0, dial)
			d.took = time.Since(start)
			close(d.done)
			ch <- d
		}()
		dials = append(dials, d)
	}
	return dials, ch
}

// settle waits for the logins until all have ended, or until as long again
// as the first successful login to a master took has passed since it
// ended: logins start together and a live master answers about as fast as
// the others, so one still going by then is most likely down. It is not
// given up on: it is returned among late, its files are still read if it
// connects, and only the choice of which node probes and etcd go through
// passes it over; a connected master to go through is what settle waits
// for (a quick worker does not end the wait). Failed logins go to
// unreachable.
func settle(dials []*dialing, ended <-chan *dialing, masters []string, unreachable map[string]error) (hosts map[string]node.Host, late map[string]func() (node.Host, error)) {
	hosts, late = map[string]node.Host{}, map[string]func() (node.Host, error){}
	var cutoff <-chan time.Time
	seen := map[*dialing]bool{}
wait:
	for len(seen) < len(dials) {
		select {
		case d := <-ended:
			seen[d] = true
			if d.err == nil && cutoff == nil && slices.Contains(masters, d.name) {
				cutoff = time.After(max(d.took, 50*time.Millisecond))
			}
		case <-cutoff:
			break wait
		}
	}
	for _, d := range dials {
		switch {
		case !seen[d]:
			late[d.name] = d.result
		case d.err != nil:
			unreachable[d.name] = d.err
		default:
			hosts[d.name] = d.host
		}
	}
	return hosts, late
}

// listNodes is nil when the API does not answer: Collect lists the nodes
// again and reports why.
func listNodes(ctx context.Context, kube kubernetes.Interface, timeout time.Duration) []controlplane.Node {
	if kube == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	return controlplane.NodesOf(list.Items)
}

// sshAddress is the host haadm logged in to h at, for a node the API does
// not list (it is down). node.SSHHost knows it and other Hosts do not;
// nothing else needs it, so node.Host does not grow a method for it.
func sshAddress(h node.Host) string {
	a, ok := h.(interface{ Addr() string })
	if !ok {
		return ""
	}
	host, _, err := net.SplitHostPort(a.Addr())
	if err != nil {
		return ""
	}
	return host
}

// etcdMasters are the nodes whose etcd is asked, in the order their
// credentials are tried: the first master first, since kubeadm init made
// them there, then by name.
func etcdMasters(nodes []controlplane.Node, extra []string, first string) []string {
	var masters []string
	for _, n := range nodes {
		if n.ControlPlane {
			masters = append(masters, n.Name)
		}
	}
	if len(masters) == 0 {
		masters = slices.Clone(extra)
	}
	slices.Sort(masters)
	masters = slices.Compact(masters)
	if first == "" {
		first = controlplane.FirstMaster(nodes)
	}
	if i := slices.Index(masters, first); i > 0 {
		masters = slices.Insert(slices.Delete(masters, i, i+1), 0, first)
	}
	return masters
}

// etcdThroughSSH is the Inputs.Etcd of Gather: a client of every master's
// etcd with the credentials of the first master connected.
func etcdThroughSSH(hosts map[string]node.Host, ips map[string]string, masters []string) func(context.Context) (*clientv3.Client, error) {
	return func(ctx context.Context) (*clientv3.Client, error) {
		from := ""
		var endpoints []string
		for _, m := range masters {
			if _, ok := hosts[m]; ok && from == "" {
				from = m
			}
			if ip := ips[m]; ip != "" {
				endpoints = append(endpoints, controlplane.EtcdClientURL(ip))
			}
		}
		switch {
		case from == "":
			return nil, errors.New("no control-plane node is reachable over SSH")
		case len(endpoints) == 0:
			return nil, errors.New("no address known for any control-plane node")
		}
		return etcdm.Connect(ctx, hosts, ips, from, endpoints)
	}
}
