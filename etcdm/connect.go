package etcdm

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

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/node"
)

// Connect returns an etcd client for endpoints with the apiserver's etcd
// client credentials, read from the master called from. etcd listens on the
// masters' own addresses, which the operator's machine often cannot reach,
// so each connection is opened from the node that owns the address (ips
// maps node name to address), through SSH; an address of no known node is
// reached from the node from.
func Connect(ctx context.Context, hosts map[string]node.Host, ips map[string]string, from string, endpoints []string) (*clientv3.Client, error) {
	h, ok := hosts[from]
	if !ok {
		return nil, fmt.Errorf("node %s: not connected", from)
	}
	tlsCfg, err := clientTLS(ctx, h)
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

// ClientCredentialPaths are the files Connect reads on the master it
// connects from: the etcd CA, then the apiserver's etcd client pair.
func ClientCredentialPaths() []string {
	dir := controlplane.PKIDir + "/"
	return []string{dir + "etcd/ca.crt", dir + "apiserver-etcd-client.crt", dir + "apiserver-etcd-client.key"}
}

// clientTLS reads, in one round trip, the credentials the apiserver uses
// for etcd from a master.
func clientTLS(ctx context.Context, h node.Host) (*tls.Config, error) {
	paths := ClientCredentialPaths()
	files, err := h.ReadFiles(ctx, paths)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if _, ok := files[p]; !ok {
			return nil, fmt.Errorf("node %s: %s is missing: haadm reaches etcd with the apiserver's etcd client credentials", h.Name(), p)
		}
	}
	pair, err := tls.X509KeyPair(files[paths[1]].Data, files[paths[2]].Data)
	if err != nil {
		return nil, fmt.Errorf("node %s: etcd client credentials: %w", h.Name(), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files[paths[0]].Data) {
		return nil, fmt.Errorf("node %s: %s holds no certificate", h.Name(), paths[0])
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
