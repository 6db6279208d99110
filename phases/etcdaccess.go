package phases

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
)

// etcdOnce holds the run's one etcd client.
type etcdOnce struct {
	mu  sync.Mutex
	cli *clientv3.Client
}

// EtcdClient returns a client for the cluster's etcd, made on first use
// from the first master's credentials and tunnelled through SSH (see
// etcdm.Connect). Plans run concurrently, so the first use is guarded.
func (c *Cluster) EtcdClient(ctx context.Context) (*clientv3.Client, error) {
	c.etcd.mu.Lock()
	defer c.etcd.mu.Unlock()
	if c.etcd.cli != nil {
		return c.etcd.cli, nil
	}
	ips := map[string]string{}
	for name, n := range c.Nodes {
		ips[name] = n.IP
	}
	// The client outlives the call that made it: it is closed with the
	// Cluster, not with that call's context.
	cli, err := etcdm.Connect(context.WithoutCancel(ctx), c.Hosts, ips, c.First.Name, []string{controlplane.EtcdClientURL(c.First.IP)})
	if err != nil {
		return nil, err
	}
	c.etcd.cli = cli
	return cli, nil
}

// closeEtcd releases the etcd client.
func (c *Cluster) closeEtcd() {
	c.etcd.mu.Lock()
	defer c.etcd.mu.Unlock()
	if c.etcd.cli != nil {
		_ = c.etcd.cli.Close()
		c.etcd.cli = nil
	}
}

// Close releases the etcd client and every node connection.
func (c *Cluster) Close() {
	c.closeEtcd()
	for _, h := range c.Hosts {
		_ = h.Close()
	}
}
