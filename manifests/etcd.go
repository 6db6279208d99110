package manifests

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/haadm/haadm/controlplane"
)

const etcdClientURLsAnnotation = "kubeadm.kubernetes.io/etcd.advertise-client-urls"

// Etcd makes node n's etcd.yaml from another master's, for a member that
// joins the existing cluster: it is named after the node, advertises and
// listens on the node's IP, and starts with --initial-cluster-state=existing
// and the given member list, which must include n itself (etcd refuses to
// start otherwise).
//
// Schemes and ports come from the source manifest. Loopback listeners, the
// metrics URL and the probes (kubeadm puts both on 127.0.0.1), data dir and
// certificate paths are the same on every master and stay as they are; only
// where they were customised to the source node's address do they move to
// the new node's.
func Etcd(src []byte, n Node, initialCluster []Member) ([]byte, error) {
	if err := n.validate(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	pod, err := decodeComponent(src, "etcd")
	if err != nil {
		return nil, err
	}
	if err := setEtcdFlags(pod, n, initialCluster); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return Encode(pod)
}

func setEtcdFlags(pod *corev1.Pod, n Node, members []Member) error {
	advClient, _ := Flag(pod, "advertise-client-urls")
	client, oldIP, err := firstEndpoint(advClient, endpoint{"https", strconv.Itoa(controlplane.EtcdClientPort)})
	if err != nil {
		return fmt.Errorf("--advertise-client-urls: %w", err)
	}
	advPeer, _ := Flag(pod, "initial-advertise-peer-urls")
	peer, _, err := firstEndpoint(advPeer, endpoint{"https", "2380"})
	if err != nil {
		return fmt.Errorf("--initial-advertise-peer-urls: %w", err)
	}
	cluster, err := initialClusterFlag(members, n.Name, peer.url(n.IP))
	if err != nil {
		return err
	}

	listenClient, err := listenURLs(pod, "listen-client-urls", oldIP, n.IP,
		client.url(loopback(n.IP))+","+client.url(n.IP))
	if err != nil {
		return err
	}
	listenPeer, err := listenURLs(pod, "listen-peer-urls", oldIP, n.IP, peer.url(n.IP))
	if err != nil {
		return err
	}

	if metrics, ok := Flag(pod, "listen-metrics-urls"); ok && metrics != "" {
		moved, err := replaceHost(metrics, oldIP, n.IP)
		if err != nil {
			return fmt.Errorf("--listen-metrics-urls: %w", err)
		}
		SetFlag(pod, "listen-metrics-urls", moved)
	}
	replaceProbeHosts(pod, oldIP, n.IP)

	SetFlag(pod, "name", n.Name)
	SetFlag(pod, "advertise-client-urls", client.url(n.IP))
	SetFlag(pod, "listen-client-urls", listenClient)
	SetFlag(pod, "listen-peer-urls", listenPeer)
	SetFlag(pod, "initial-advertise-peer-urls", peer.url(n.IP))
	SetFlag(pod, "initial-cluster", cluster)
	SetFlag(pod, "initial-cluster-state", "existing")
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[etcdClientURLsAnnotation] = client.url(n.IP)
	return nil
}

// listenURLs moves the source node's address in a listen flag to the new
// node and keeps everything else (loopback, wildcard, extra URLs); def is
// kubeadm's value, used when the flag is missing.
func listenURLs(pod *corev1.Pod, flag, oldIP, newIP, def string) (string, error) {
	v, ok := Flag(pod, flag)
	if !ok || v == "" {
		return def, nil
	}
	out, err := replaceHost(v, oldIP, newIP)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return out, nil
}

// initialClusterFlag renders --initial-cluster sorted by member name, so
// the manifest does not change with the order in which etcd happens to list
// its members and a re-run writes identical bytes.
func initialClusterFlag(members []Member, self, selfPeerURL string) (string, error) {
	if len(members) == 0 {
		return "", fmt.Errorf("initial cluster is empty: it must list the existing members and %s", self)
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	entries := make([]string, 0, len(sorted))
	foundSelf := false
	for i, m := range sorted {
		if m.Name == "" || strings.ContainsAny(m.Name, ",= \t") {
			return "", fmt.Errorf("initial cluster: member name %q: must be non-empty without , = or spaces", m.Name)
		}
		if i > 0 && sorted[i-1].Name == m.Name {
			return "", fmt.Errorf("initial cluster: member %q listed twice", m.Name)
		}
		u, err := url.Parse(m.PeerURL)
		if err != nil || u.Scheme == "" || u.Port() == "" || strings.Contains(m.PeerURL, ",") {
			return "", fmt.Errorf("initial cluster: member %s: peer URL %q: want scheme://host:port", m.Name, m.PeerURL)
		}
		if m.Name == self {
			if !sameURL(m.PeerURL, selfPeerURL) {
				return "", fmt.Errorf("initial cluster: member %s has peer URL %s but this manifest advertises %s", m.Name, m.PeerURL, selfPeerURL)
			}
			foundSelf = true
		}
		entries = append(entries, m.Name+"="+m.PeerURL)
	}
	if !foundSelf {
		return "", fmt.Errorf("initial cluster does not list %s (%s): etcd would refuse to start", self, selfPeerURL)
	}
	return strings.Join(entries, ","), nil
}

// sameURL compares peer URLs with IPs normalised, since etcd's member list
// may spell an IPv6 address differently from the node's config.
func sameURL(a, b string) bool {
	x, errX := url.Parse(a)
	y, errY := url.Parse(b)
	if errX != nil || errY != nil {
		return false
	}
	hostOK := x.Hostname() == y.Hostname() || sameIP(x.Hostname(), y.Hostname())
	return hostOK && x.Scheme == y.Scheme && x.Port() == y.Port()
}
