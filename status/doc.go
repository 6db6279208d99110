// Package status is the engine of `haadm status`: it inspects a kubeadm
// cluster, says whether its control plane is highly available, and renders
// the answer for people (a table) and for scripts (JSON, YAML).
//
// # Use
//
//	r := status.Gather(ctx, status.GatherOptions{
//		Kube: clientset, // nil without a kubeconfig
//		Dial: node.SSHDialer(opts),
//	})
//	status.Render(os.Stdout, r, "table")
//	os.Exit(status.ExitCode(r))
//
// Gather lists the nodes, logs in to them and connects to etcd through
// SSH (etcdm.Connect); Collect does the inspection itself, for callers
// that bring their own hosts and etcd client:
//
//	r := status.Collect(ctx, status.Inputs{Kube: clientset, Hosts: hosts, Unreachable: errs, Etcd: factory})
//
// The rules the cluster is judged by (which nodes are masters and which
// is the first, ports, where each kubeconfig points, the readiness probe,
// when an etcd member has started) are package controlplane's and
// etcdm's, the very ones `haadm promote` builds the cluster by.
//
// Collect only reads: the Kubernetes API (Nodes, ConfigMaps kubeadm-config,
// kube-proxy and cluster-info, the apiserver mirror pods, two leader Leases and haadm's lock), etcd
// (member list, each member's status), and on every node, in one SSH
// session, /etc/kubernetes/{admin,kubelet,controller-manager,scheduler}.conf
// and /etc/nginx/nginx.conf. It probes GET /readyz and /version of every
// apiserver, of every load balancer haadm wrote and of each of its backends,
// over connections opened from a node (node.Host.DialContext), so the
// machine running haadm needs no route to the cluster network. Everything
// runs in parallel and every probe has its own timeout: a dead node costs
// about one probe timeout, not one per check.
//
// # Report
//
// Report is the schema, documented field by field on the types and in
// SCHEMA.md next to this file. JSON and YAML use the same field names;
// lists are never null. SchemaVersion changes only when a field is removed
// or changes meaning.
//
// # Verdict
//
// Judge computes the verdict from a Report alone, so it is table-tested
// without a cluster:
//
//   - "ha": at least 3 etcd voters, all started and healthy, no learner, a
//     leader; at least 3 apiservers ready, their serving certificates
//     covering every address in use (node IP, endpoint name or IP) and not
//     expired; every control-plane node labelled, tainted NoSchedule and
//     Ready; every kubeconfig and ConfigMap pointing where it should; every
//     load balancer ready with every backend up and every apiserver among
//     its backends; controlPlaneEndpoint set, and not itself one master's
//     apiserver; every node inspected.
//   - "single-master": one control-plane node, one etcd member and no
//     controlPlaneEndpoint (what haadm promote starts from); the reasons say
//     what HA lacks.
//   - "degraded": anything else, with one reason per problem naming the
//     node and the component.
//
// Control-plane nodes are those labelled node-role.kubernetes.io/control-plane,
// those running a kube-apiserver mirror pod, and etcd members: a half
// promoted node is judged as a master even before it is labelled.
//
// Where each kubeconfig should point: admin.conf (masters), kubelet.conf on
// workers and the kube-proxy and cluster-info ConfigMaps at the endpoint,
// https://controlPlaneEndpoint; kubelet.conf on a master at its own
// apiserver (kubeadm's default since 1.33) or at the endpoint, both fine;
// controller-manager.conf and scheduler.conf at their own apiserver. Without
// controlPlaneEndpoint "the endpoint" is the first master's apiserver (the
// oldest control-plane Node, or Inputs.FirstMaster).
//
// Informational only, not in the verdict: Leases (who leads), the haadm
// lock (a run changing the cluster right now), and whether
// cluster-info is signed (a cluster without bootstrap tokens has no
// signatures, and that is fine).
//
// # Exit codes
//
// ExitCode: 0 ha, 1 degraded, 2 single-master, 3 the Kubernetes API could
// not be read (the report is partial). Only a healthy HA control plane
// exits 0, so `haadm status && next-step` is safe in scripts.
package status
