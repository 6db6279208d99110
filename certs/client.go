package certs

import "crypto/x509"

// Client identities, the same on every master. Each call returns fresh
// slices, so callers may change what they get.

// APIServerKubeletClient is pki/apiserver-kubelet-client.crt. kubeadm
// v1.36.3 puts no group in it (its output in testdata proves it): the
// ClusterRoleBinding kubeadm:apiserver-kubelet-client gives the user access
// to the kubelet API. Clusters made by an older kubeadm carry
// O=kubeadm:cluster-admins (before v1.29: system:masters) and may not have
// that binding; re-issue theirs from SpecOf(existing cert) so the new
// apiserver keeps the kubelet access the first one has.
func APIServerKubeletClient() Spec {
	return clientSpec(APIServerKubeletClientCN)
}

// FrontProxyClient is pki/front-proxy-client.crt, signed by front-proxy-ca.
func FrontProxyClient() Spec {
	return clientSpec(FrontProxyClientCN)
}

// APIServerEtcdClient is pki/apiserver-etcd-client.crt, signed by etcd/ca.
func APIServerEtcdClient() Spec {
	return clientSpec(APIServerEtcdClientCN)
}

// EtcdHealthcheckClient is pki/etcd/healthcheck-client.crt, signed by etcd/ca.
func EtcdHealthcheckClient() Spec {
	return clientSpec(EtcdHealthcheckClientCN)
}

// Admin is the client of admin.conf. Since v1.29 it is in
// kubeadm:cluster-admins, bound to cluster-admin by RBAC, rather than in
// the unrevocable system:masters (that is super-admin.conf's, which only the
// node that ran `kubeadm init` has).
func Admin() Spec {
	return clientSpec(AdminCN, ClusterAdminsGroup)
}

// ControllerManager is the client of controller-manager.conf.
func ControllerManager() Spec {
	return clientSpec(ControllerManagerCN)
}

// Scheduler is the client of scheduler.conf.
func Scheduler() Spec {
	return clientSpec(SchedulerCN)
}

func clientSpec(cn string, groups ...string) Spec {
	return Spec{
		CommonName:   cn,
		Organization: groups,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}
