package phases

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/haadm/haadm/node"
)

// EtcdClient returns a client for the cluster's etcd, built on first use from the
// first master's etcd CA and apiserver-etcd-client credentials. etcd listens
// on the masters' own addresses, which the operator's machine often cannot
// reach, so every connection is opened from the node that owns the address,
// through SSH (see NewEtcdClient).
func (c *Cluster) EtcdClient(ctx context.Context) (*clientv3.Client, error) {
	if c.etcd != nil {
		return c.etcd, nil
	}
	cli, err := c.newEtcdClient(ctx, []string{"https://" + net.JoinHostPort(c.First.IP, "2379")})
	if err != nil {
		return nil, err
	}
	c.etcd = cli
	return cli, nil
}

// etcdTLS reads the client credentials haadm uses for etcd from a master.
func etcdTLS(ctx context.Context, h node.Host) (*tls.Config, error) {
	read := func(p string) ([]byte, error) {
		b, err := h.ReadFile(ctx, pkiDir+"/"+p)
		if err != nil {
			return nil, fmt.Errorf("node %s: read %s/%s: %w", h.Name(), pkiDir, p, err)
		}
		return b, nil
	}
	caPEM, err := read("etcd/ca.crt")
	if err != nil {
		return nil, err
	}
	crt, err := read("apiserver-etcd-client.crt")
	if err != nil {
		return nil, err
	}
	key, err := read("apiserver-etcd-client.key")
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("node %s: etcd client credentials: %w", h.Name(), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("node %s: %s/etcd/ca.crt holds no certificate", h.Name(), pkiDir)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// NewEtcdClient returns an etcd client for endpoints, with the credentials
// of master from. etcd listens on the masters' own addresses, which the
// operator's machine often cannot reach, so each connection is opened from
// the node that owns the address (ips maps node name to address), through
// SSH; an address of no known node is reached from the node from.
func NewEtcdClient(ctx context.Context, hosts map[string]node.Host, ips map[string]string, from string, endpoints []string) (*clientv3.Client, error) {
	h, ok := hosts[from]
	if !ok {
		return nil, fmt.Errorf("node %s: not connected", from)
	}
	tlsCfg, err := etcdTLS(ctx, h)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		for name, ip := range ips {
			if owner, ok := hosts[name]; ok && ip == host {
				return owner.DialContext(ctx, "tcp", addr)
			}
		}
		return h.DialContext(ctx, "tcp", addr)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

func (c *Cluster) newEtcdClient(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	ips := map[string]string{}
	for name, n := range c.Nodes {
		ips[name] = n.IP
	}
	return NewEtcdClient(ctx, c.Hosts, ips, c.First.Name, endpoints)
}

// closeEtcd releases the etcd client.
func (c *Cluster) closeEtcd() {
	if c.etcd != nil {
		_ = c.etcd.Close()
		c.etcd = nil
	}
}

// Close releases the etcd client and every node connection.
func (c *Cluster) Close() {
	c.closeEtcd()
	for _, h := range c.Hosts {
		_ = h.Close()
	}
}
