package phases

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// Certs gives every new master the cluster's shared CA, service-account and
// front-proxy material (byte for byte from the first master) and its own
// apiserver and etcd certificates with the right SANs, and re-issues the
// first master's apiserver certificate so it covers the load balancer too.
// kube-apiserver reloads its serving certificate from disk: no restart.
type Certs struct{}

func (Certs) Name() string { return "certs" }
func (Certs) Description() string {
	return "shared CAs to the new masters; per-node apiserver/etcd certs with node, LB and service SANs"
}
func (Certs) Uses() Uses { return UsesEndpoint }

// certRenewMargin: a certificate that expires sooner is re-issued rather
// than kept; a third of the validity when that is shorter, or a cluster
// with month-long certificates would re-issue them on every run.
func (c *Cluster) certRenewMargin() time.Duration { return min(30*24*time.Hour, c.certValidity()/3) }

// leaf is one certificate a master must hold.
type leaf struct {
	name string // path under pki without extension, e.g. "etcd/server"
	ca   *certs.CA
	spec certs.Spec
}

func (Certs) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return nil, err
	}
	// Every control plane, also one made by hand or by an earlier run:
	// behind the load balancer, each must answer to its names.
	masters := c.ControlPlanes()
	// Nodes are independent: read each in one round trip, all at once.
	w := &Work{PerNode: true}
	if err := w.planNodes(len(masters), func(i int) (*Step, error) {
		return planNodeCerts(ctx, c, src, masters[i], time.Now())
	}); err != nil {
		return nil, err
	}
	return w, nil
}

// Reads are every master's PKI files.
func (Certs) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, m := range c.ControlPlanes() {
		out[m.Name] = certPaths(c, m)
	}
	return out
}

// NewKeyPaths are a new master's leaf keys: each one missing is a key the
// plan makes.
func (Certs) NewKeyPaths() []string {
	var out []string
	for _, l := range leafNames(false) {
		out = append(out, pkiDir+"/"+l+".key")
	}
	return out
}

// leafNames are the certificates a master holds, by path under pki
// without extension; the first master already has all but the
// apiserver's, which gains the LB names.
func leafNames(first bool) []string {
	if first {
		return []string{"apiserver"}
	}
	return []string{"apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client", "etcd/server", "etcd/peer", "etcd/healthcheck-client"}
}

// certPaths are the PKI files of master m that the plan compares.
func certPaths(c *Cluster, m NodeInfo) []string {
	first := !c.isNew(m.Name)
	var paths []string
	if !first {
		for _, f := range sharedPKIFiles() {
			paths = append(paths, pkiDir+"/"+f)
		}
	}
	for _, l := range leafNames(first) {
		paths = append(paths, pkiDir+"/"+l+".crt", pkiDir+"/"+l+".key")
	}
	return paths
}

// leaves are the certificates node m must hold; the first master already
// has all but the apiserver's, which gains the LB names.
func leaves(c *Cluster, src *source, m NodeInfo) ([]leaf, error) {
	api, err := apiserverSpec(c, m)
	if err != nil {
		return nil, err
	}
	out := []leaf{{name: "apiserver", ca: src.ca, spec: api}}
	if !c.isNew(m.Name) {
		return out, nil
	}
	nf := certs.NodeFacts{Name: m.Name, IP: net.ParseIP(m.IP)}
	srv, err := certs.EtcdServer(nf, c.Facts.EtcdServerCertSANs...)
	if err != nil {
		return nil, err
	}
	peer, err := certs.EtcdPeer(nf, c.Facts.EtcdPeerCertSANs...)
	if err != nil {
		return nil, err
	}
	return append(out,
		leaf{name: "apiserver-kubelet-client", ca: src.ca, spec: src.kubeletClient},
		leaf{name: "front-proxy-client", ca: src.frontProxyCA, spec: certs.FrontProxyClient()},
		leaf{name: "apiserver-etcd-client", ca: src.etcdCA, spec: certs.APIServerEtcdClient()},
		leaf{name: "etcd/server", ca: src.etcdCA, spec: srv},
		leaf{name: "etcd/peer", ca: src.etcdCA, spec: peer},
		leaf{name: "etcd/healthcheck-client", ca: src.etcdCA, spec: certs.EtcdHealthcheckClient()},
	), nil
}

// planNodeCerts reads every PKI file of node m at once and returns the step
// that writes what is missing or wrong, certificates already issued; nil
// when the node is done.
func planNodeCerts(ctx context.Context, c *Cluster, src *source, m NodeInfo, now time.Time) (*Step, error) {
	first := !c.isNew(m.Name)
	want, err := leaves(c, src, m)
	if err != nil {
		return nil, err
	}
	have, err := c.Host(m.Name).ReadFiles(ctx, certPaths(c, m))
	if err != nil {
		return nil, err
	}
	var files []node.File
	var details []string
	if !first {
		for _, f := range sharedPKIFiles() {
			p := pkiDir + "/" + f
			s := src.shared[f]
			if h, ok := have[p]; ok && string(h.Data) == string(s.Data) && h.Mode == s.Mode && h.UID == s.UID && h.GID == s.GID {
				continue
			}
			files = append(files, node.File{Path: p, Data: s.Data, Mode: s.Mode, UID: s.UID, GID: s.GID})
			details = append(details, fileDetail(p, have, s.Data, "copy from "+c.First.Name))
		}
	}
	for _, l := range want {
		crtPath, keyPath := pkiDir+"/"+l.name+".crt", pkiDir+"/"+l.name+".key"
		why := ""
		crt, ok := have[crtPath]
		switch cert, err := certs.ParseCertPEM(crt.Data); {
		case !ok:
			why = "missing"
		case err != nil:
			why = "unreadable: " + err.Error()
		default:
			// Never drop a SAN somebody added by hand.
			l.spec = unionSANs(l.spec, certs.SpecOf(cert))
			if ok, err := certs.Matches(cert, l.spec, l.ca.Cert, now, c.certRenewMargin()); !ok {
				why = fmt.Sprint(err)
			}
		}
		if why == "" {
			continue
		}
		issued, err := issue(l, have[keyPath].Data, now, c.certValidity(), c.keys.NewKey)
		if err != nil {
			return nil, fmt.Errorf("node %s: issue %s: %w", m.Name, l.name, err)
		}
		if issued.newKey != nil {
			files = append(files, node.File{Path: keyPath, Data: issued.newKey, Mode: 0o600})
		}
		files = append(files, node.File{Path: crtPath, Data: issued.crt, Mode: 0o644})
		details = append(details, fileDetail(crtPath, have, issued.crt, why))
	}
	if len(files) == 0 {
		return nil, nil
	}
	return &Step{
		Node:    m.Name,
		What:    fmt.Sprintf("%d files (%s)", len(files), shortList(files)),
		Details: details,
		Do:      func(ctx context.Context) error { return c.Host(m.Name).WriteFiles(ctx, files) },
	}, nil
}

// fileDetail describes one planned write: why, and the diff.
func fileDetail(path string, have map[string]node.File, data []byte, why string) string {
	old, exists := have[path]
	return fmt.Sprintf("%s: %s\n%s", path, why, node.Diff(path, old.Data, data, exists))
}

// shortList names files by their base names, for a progress line.
func shortList(files []node.File) string {
	var s []string
	for _, f := range files {
		s = append(s, strings.TrimPrefix(strings.TrimPrefix(f.Path, pkiDir+"/"), "/etc/kubernetes/"))
	}
	if len(s) > 4 {
		return strings.Join(s[:3], ", ") + fmt.Sprintf(", and %d more", len(s)-3)
	}
	return strings.Join(s, ", ")
}

// apiserverSpec is what node n's serving certificate must cover.
func apiserverSpec(c *Cluster, n NodeInfo) (certs.Spec, error) {
	names, ips := c.LBSANs()
	return certs.APIServer(certs.NodeFacts{Name: n.Name, IP: net.ParseIP(n.IP)}, certs.ClusterFacts{
		DNSDomain: c.Facts.DNSDomain, ServiceSubnet: c.Facts.ServiceSubnet,
		LBNames: names, LBIPs: ips, ExtraSANs: slices.Clone(c.Facts.CertSANs), NodeLocalLB: c.Opts.LBMode == lb.ModeNodeLocal,
	})
}

// unionSANs adds the SANs of have that want lacks; subject and usages stay want's.
func unionSANs(want, have certs.Spec) certs.Spec {
	for _, d := range have.DNSNames {
		if !slices.Contains(want.DNSNames, d) {
			want.DNSNames = append(want.DNSNames, d)
		}
	}
	for _, ip := range have.IPs {
		if !slices.ContainsFunc(want.IPs, ip.Equal) {
			want.IPs = append(want.IPs, ip)
		}
	}
	return want
}

type issued struct {
	crt    []byte
	newKey []byte // nil when the node's key was kept
}

// issue signs a certificate for l. The node's existing key is kept when
// there is one (as `kubeadm certs renew` does), so nothing that pinned it
// breaks.
func issue(l leaf, keyPEM []byte, now time.Time, validity time.Duration, newKey func(alg string) (crypto.Signer, error)) (issued, error) {
	var out issued
	var key crypto.Signer
	if keyPEM != nil {
		if k, err := certs.ParseKeyPEM(keyPEM); err == nil {
			key = k
		}
	}
	if key == nil {
		var err error
		if key, err = newKey(keyAlgorithm(l.ca.Cert)); err != nil {
			return out, err
		}
		if out.newKey, err = certs.EncodeKeyPEM(key); err != nil {
			return out, err
		}
	}
	nb, d := certs.KubeadmWindow(now, validity)
	crt, err := certs.Issue(l.ca, l.spec, key, nb, d)
	out.crt = crt
	return out, err
}

// certValidity is kubeadm-config's certificateValidityPeriod, or kubeadm's
// default of a year.
func (c *Cluster) certValidity() time.Duration {
	if c.Facts.CertificateValidity > 0 {
		return c.Facts.CertificateValidity
	}
	return certs.DefaultValidity
}

// keyAlgorithm follows the cluster's choice (kubeadm's encryptionAlgorithm)
// as seen in its CA.
func keyAlgorithm(ca *x509.Certificate) string {
	if alg := certs.KeyAlgorithmOf(ca.PublicKey); alg != "" {
		return alg
	}
	return certs.DefaultKeyAlgorithm
}

// modeOr is m, or def when m is unset.
func modeOr(m, def fs.FileMode) fs.FileMode {
	if m == 0 {
		return def
	}
	return m
}

func permOf(m uint64) fs.FileMode { return fs.FileMode(m).Perm() }
