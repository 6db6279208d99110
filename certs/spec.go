package certs

import (
	"crypto/x509"
	"net"
	"slices"
)

// Spec is what a certificate must say: subject, SANs and extended key usages.
// Key usage, validity and the signing CA are decided by Issue.
type Spec struct {
	CommonName   string
	Organization []string
	// DNSNames are sorted and unique, as kubeadm leaves them.
	DNSNames []string
	// IPs are unique in kubeadm's order: IPv4 addresses in their 4-byte form,
	// so they compare equal to the ones parsed back from a certificate.
	IPs         []net.IP
	ExtKeyUsage []x509.ExtKeyUsage
}

// NodeFacts describes one control-plane node.
type NodeFacts struct {
	// Name is the node name (kubeadm's nodeRegistration.name), e.g. "emei".
	Name string
	// IP is the address the node's apiserver and etcd advertise.
	IP net.IP
}

// ClusterFacts is what the certificates need from kubeadm-config and from
// haadm's load-balancer settings.
type ClusterFacts struct {
	// DNSDomain is networking.dnsDomain; empty means kubeadm's default.
	DNSDomain string
	// ServiceSubnet is networking.serviceSubnet, possibly a dual-stack comma
	// list; empty means kubeadm's default.
	ServiceSubnet string
	// LBNames and LBIPs are the load-balancer endpoint every client will use.
	LBNames []string
	LBIPs   []net.IP
	// ExtraSANs is apiServer.certSANs: each an IP, a DNS name or a wildcard.
	ExtraSANs []string
	// NodeLocalLB adds 127.0.0.1 and localhost, which clients of a
	// node-local proxy reach the apiservers through.
	NodeLocalLB bool
}

// kubeadm's defaults for the networking fields of ClusterConfiguration.
const (
	DefaultDNSDomain     = "cluster.local"
	DefaultServiceSubnet = "10.96.0.0/12"
)

// Subjects and groups kubeadm v1.36 puts in its certificates.
const (
	APIServerCN              = "kube-apiserver"
	APIServerKubeletClientCN = "kube-apiserver-kubelet-client"
	FrontProxyClientCN       = "front-proxy-client"
	APIServerEtcdClientCN    = "kube-apiserver-etcd-client"
	EtcdHealthcheckClientCN  = "kube-etcd-healthcheck-client"
	AdminCN                  = "kubernetes-admin"
	ControllerManagerCN      = "system:kube-controller-manager"
	SchedulerCN              = "system:kube-scheduler"
	ClusterAdminsGroup       = "kubeadm:cluster-admins"
)

// SpecOf reads the spec back from an existing certificate, the way
// `kubeadm certs renew` does, so a certificate can be re-issued with the
// identity and SANs it already has.
func SpecOf(cert *x509.Certificate) Spec {
	var sans altNames
	sans.dns = slices.Clone(cert.DNSNames)
	sans.ips = slices.Clone(cert.IPAddresses)
	dns, ips := sans.done()
	return Spec{
		CommonName:   cert.Subject.CommonName,
		Organization: slices.Clone(cert.Subject.Organization),
		DNSNames:     dns,
		IPs:          ips,
		ExtKeyUsage:  slices.Clone(cert.ExtKeyUsage),
	}
}
