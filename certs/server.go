package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// APIServer is the spec of pki/apiserver.crt for node: kubeadm's
// GetAPIServerAltNames, with the load balancer standing in for
// controlPlaneEndpoint.
func APIServer(node NodeFacts, cluster ClusterFacts) (Spec, error) {
	if err := node.check(); err != nil {
		return Spec{}, err
	}
	serviceIP, err := kubernetesServiceIP(cluster.ServiceSubnet)
	if err != nil {
		return Spec{}, err
	}
	domain := cluster.DNSDomain
	if domain == "" {
		domain = DefaultDNSDomain
	}
	sans := altNames{
		dns: []string{node.Name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc." + domain},
		ips: []net.IP{serviceIP, node.IP},
	}
	// The LB comes where kubeadm puts controlPlaneEndpoint (before
	// certSANs), so the IP order equals what kubeadm writes once haadm has
	// recorded the LB in kubeadm-config.
	for _, name := range cluster.LBNames {
		if err := sans.add(name); err != nil {
			return Spec{}, fmt.Errorf("load balancer name: %w", err)
		}
	}
	sans.ips = append(sans.ips, cluster.LBIPs...)
	for _, san := range cluster.ExtraSANs {
		if err := sans.add(san); err != nil {
			return Spec{}, fmt.Errorf("apiServer.certSANs: %w", err)
		}
	}
	// Last, so that certSANs already listing them (the usual way to get
	// them from kubeadm) keep kubeadm's order.
	if cluster.NodeLocalLB {
		sans.dns = append(sans.dns, "localhost")
		sans.ips = append(sans.ips, net.IPv4(127, 0, 0, 1))
	}
	dns, ips := sans.done()
	return Spec{
		CommonName:  APIServerCN,
		DNSNames:    dns,
		IPs:         ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil
}

// EtcdServer is the spec of pki/etcd/server.crt. extraSANs is
// etcd.local.serverCertSANs from kubeadm-config.
func EtcdServer(node NodeFacts, extraSANs ...string) (Spec, error) {
	return etcdSpec(node, extraSANs, "etcd.local.serverCertSANs")
}

// EtcdPeer is the spec of pki/etcd/peer.crt. extraSANs is
// etcd.local.peerCertSANs from kubeadm-config.
func EtcdPeer(node NodeFacts, extraSANs ...string) (Spec, error) {
	return etcdSpec(node, extraSANs, "etcd.local.peerCertSANs")
}

// etcdSpec is kubeadm's getAltNames: etcd listens on the node's address and
// on loopback, and peers and clients name it by node name.
func etcdSpec(node NodeFacts, extraSANs []string, field string) (Spec, error) {
	if err := node.check(); err != nil {
		return Spec{}, err
	}
	sans := altNames{
		dns: []string{node.Name, "localhost"},
		ips: []net.IP{node.IP, net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, san := range extraSANs {
		if err := sans.add(san); err != nil {
			return Spec{}, fmt.Errorf("%s: %w", field, err)
		}
	}
	dns, ips := sans.done()
	return Spec{
		CommonName: node.Name,
		DNSNames:   dns,
		IPs:        ips,
		// etcd checks ClientAuth on its serving certificate too (kubeadm
		// keeps both usages for etcd-io/etcd#9785).
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, nil
}

func (n NodeFacts) check() error {
	if n.Name == "" {
		return errors.New("node has no name")
	}
	if n.IP == nil || n.IP.IsUnspecified() {
		return fmt.Errorf("node %s has no IP address", n.Name)
	}
	return nil
}

// kubernetesServiceIP is the first address of the first service subnet: the
// ClusterIP of the default/kubernetes Service.
func kubernetesServiceIP(subnets string) (net.IP, error) {
	if subnets == "" {
		subnets = DefaultServiceSubnet
	}
	first, _, _ := strings.Cut(subnets, ",")
	_, cidr, err := net.ParseCIDR(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("service subnet %q: %w", subnets, err)
	}
	ip := normalizeIP(cidr.IP)
	next := make(net.IP, len(ip))
	copy(next, ip)
	for i := len(next) - 1; i >= 0; i-- {
		next[i]++
		if next[i] != 0 {
			break
		}
	}
	if !cidr.Contains(next) {
		return nil, fmt.Errorf("service subnet %s is too small to hold the kubernetes Service IP", cidr)
	}
	return next, nil
}
