package status

import (
	"context"
	"fmt"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/node"
)

// DefaultProbeTimeout bounds each probe when Inputs.ProbeTimeout is zero.
// A healthy probe takes milliseconds; the bound is what a dead node costs.
const DefaultProbeTimeout = 3 * time.Second

// Inputs is everything Collect reads from. Collect never changes anything
// through them.
type Inputs struct {
	// Kube reads Nodes, ConfigMaps, Leases and the apiserver mirror pods.
	Kube kubernetes.Interface
	// Hosts are the nodes haadm is logged in to. Control-plane nodes
	// missing from both Hosts and Unreachable are reported as not
	// inspected; workers missing from both are skipped.
	Hosts map[string]node.Host
	// Unreachable are the nodes that could not be dialled, with the error
	// (node.UnreachableError.Errs).
	Unreachable map[string]error
	// Late are logins still under way (see Gather): each returns the host
	// or why there is none, within its own bound. Their files are read
	// when they connect and they count as unreachable when they fail, but
	// no probe goes through them.
	Late map[string]func() (node.Host, error)
	// Etcd returns a client whose dialer reaches every member's client
	// URL (haadm tunnels etcd through SSH). It may fail; nil skips etcd.
	// Collect closes the client.
	Etcd func(ctx context.Context) (*clientv3.Client, error)
	// Dial opens a TCP connection to addr from the side of the node
	// called via. Nil means Hosts[via].DialContext.
	Dial func(ctx context.Context, via, network, addr string) (net.Conn, error)
	// FirstMaster is the node clients should use when there is no
	// controlPlaneEndpoint; empty means the oldest node labelled
	// control-plane (the one kubeadm init registered).
	FirstMaster string
	// ProbeTimeout bounds every single probe (one API call, one file read,
	// one HTTPS request, one etcd call); zero means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (in *Inputs) timeout() time.Duration {
	if in.ProbeTimeout > 0 {
		return in.ProbeTimeout
	}
	return DefaultProbeTimeout
}

func (in *Inputs) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Inputs) dial(ctx context.Context, via, network, addr string) (net.Conn, error) {
	if in.Dial != nil {
		return in.Dial(ctx, via, network, addr)
	}
	h, ok := in.Hosts[via]
	if login := in.Late[via]; !ok && login != nil {
		var err error
		if h, err = login(); err != nil {
			return nil, err
		}
		ok = true
	}
	if !ok {
		return nil, fmt.Errorf("no connection to node %s", via)
	}
	return h.DialContext(ctx, network, addr)
}
