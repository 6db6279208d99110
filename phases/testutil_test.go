package phases

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/cluster-bootstrap/token/jws"
	"sigs.k8s.io/yaml"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/node"
)

// The lab the fixtures are made from: a real kubeadm v1.36.3 cluster whose
// first master is shaolin, with emei and wudang joined as workers.
const (
	shaolinIP  = testkit.ShaolinIP
	emeiIP     = testkit.EmeiIP
	wudangIP   = testkit.WudangIP
	wutaiIP    = "10.250.0.14" // a fourth node, added by hand: a worker that stays one
	labVersion = testkit.LabVersion
	// A bootstrap token that signs cluster-info; the lab's real tokens are
	// not captured, so the fixture brings its own.
	tokenID     = "abcdef"
	tokenSecret = "0123456789abcdef"
)

// lab is the captured cluster as file contents, built once per test binary:
// RSA key generation is what makes it slow.
type lab struct {
	// files maps node name to absolute path to content.
	files map[string]map[string][]byte
	caPEM []byte
	ca    *certs.CA
	// frontProxyCA and etcdCA are generated: the kubeadm-pki fixture keeps
	// only ca.key.
	frontProxyCA, etcdCA *certs.CA
	// The captured ConfigMaps (cluster-info's embedded CA swapped) and nodes.
	clusterInfo, kubeProxy, kubeadmConfig, kubeletConfig []byte
	nodes                                                []byte
}

var (
	labOnce sync.Once
	labData *lab
	labErr  error
)

func getLab(t *testing.T) *lab {
	t.Helper()
	labOnce.Do(func() { labData, labErr = buildLab() })
	if labErr != nil {
		t.Fatalf("building the lab fixture: %v", labErr)
	}
	return labData
}

// buildLab loads the captured files and makes their PKI consistent: the
// captured shaolin holds certificates only, so its CA becomes the
// kubeadm-pki fixture's (certificate and key from real kubeadm), the other
// two CAs are generated the way kubeadm makes them, and every leaf shaolin
// has is re-issued from those CAs with the subject and SANs of the captured
// one. Every kubeconfig's embedded CA is swapped for the new one.
func buildLab() (*lab, error) {
	l := &lab{files: map[string]map[string][]byte{}}
	read := func(p string) []byte {
		b, err := testkit.ReadTestdata(testkit.Lab + "/" + p)
		if err != nil {
			panic(err)
		}
		return b
	}
	var err error
	l.caPEM = read("kubeadm-pki/ca.crt")
	if l.ca, err = certs.LoadCA(l.caPEM, read("kubeadm-pki/ca.key")); err != nil {
		return nil, err
	}
	fpPEM, fpKey, fpCA, err := testkit.NewCA("front-proxy-ca")
	if err != nil {
		return nil, err
	}
	etcdPEM, etcdKey, etcdCA, err := testkit.NewCA("etcd-ca")
	if err != nil {
		return nil, err
	}
	l.frontProxyCA, l.etcdCA = fpCA, etcdCA

	oldCA := base64.StdEncoding.EncodeToString(read("shaolin/etc/kubernetes/pki/ca.crt"))
	newCA := base64.StdEncoding.EncodeToString(l.caPEM)
	swapCA := func(b []byte) []byte {
		if !bytes.Contains(b, []byte(oldCA)) {
			panic("captured kubeconfig without the lab CA")
		}
		return bytes.ReplaceAll(b, []byte(oldCA), []byte(newCA))
	}

	for _, n := range []string{"shaolin", "emei", "wudang"} {
		captured, err := testkit.LabFiles(n)
		if err != nil {
			return nil, err
		}
		files := map[string][]byte{}
		for abs, b := range captured {
			if strings.HasPrefix(abs, pkiDir+"/") {
				continue // made consistent below
			}
			if strings.HasSuffix(abs, ".conf") {
				b = swapCA(b)
			}
			files[abs] = b
		}
		files[pkiDir+"/ca.crt"] = l.caPEM // what kubeadm join leaves on a worker
		l.files[n] = files
	}

	sh := l.files["shaolin"]
	sh[pkiDir+"/ca.key"] = read("kubeadm-pki/ca.key")
	sh[pkiDir+"/front-proxy-ca.crt"], sh[pkiDir+"/front-proxy-ca.key"] = fpPEM, fpKey
	sh[pkiDir+"/etcd/ca.crt"], sh[pkiDir+"/etcd/ca.key"] = etcdPEM, etcdKey
	saKey, err := certs.NewKey(certs.RSA2048)
	if err != nil {
		return nil, err
	}
	if sh[pkiDir+"/sa.key"], err = certs.EncodeKeyPEM(saKey); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	sh[pkiDir+"/sa.pub"] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	for name, ca := range map[string]*certs.CA{
		"apiserver": l.ca, "apiserver-kubelet-client": l.ca, "front-proxy-client": fpCA,
		"apiserver-etcd-client": etcdCA, "etcd/server": etcdCA, "etcd/peer": etcdCA, "etcd/healthcheck-client": etcdCA,
	} {
		captured, err := certs.ParseCertPEM(read("shaolin/etc/kubernetes/pki/" + name + ".crt"))
		if err != nil {
			return nil, err
		}
		crt, key, err := testkit.IssueLeaf(ca, certs.SpecOf(captured), time.Now())
		if err != nil {
			return nil, err
		}
		sh[pkiDir+"/"+name+".crt"], sh[pkiDir+"/"+name+".key"] = crt, key
	}

	l.clusterInfo = swapCA(read("configmaps/cluster-info.yaml"))
	l.kubeProxy = read("configmaps/kube-proxy.yaml")
	l.kubeadmConfig = read("configmaps/kubeadm-config.yaml")
	l.kubeletConfig = read("configmaps/kubelet-config.yaml")
	l.nodes = read("nodes.yaml")
	return l, nil
}

// fileMode is how kubeadm leaves a file: secrets and static pods 0600.
func fileMode(path string) fs.FileMode {
	switch {
	case strings.HasSuffix(path, ".key"), strings.HasSuffix(path, ".conf"), strings.HasPrefix(path, manifestsDir+"/"):
		return 0o600
	}
	return 0o644
}

// setup says what the fixture looks like; the zero value is the lab as
// `haadm promote --nodes emei,wudang --lb-node emei` sees it.
type setup struct {
	Opts Options
	// Worker adds wutai, a fourth node that stays a worker.
	Worker bool
	// NoEndpoint discovers the cluster without resolving the load-balancer
	// options, as `haadm phase etcd` (or mark) does.
	NoEndpoint bool
	// EditNodes changes the Node objects before the clientset is built.
	EditNodes func(map[string]*corev1.Node)
	// Objects are added to the clientset.
	Objects []runtime.Object
}

// fixture is a Cluster assembled the way phases.Execute does it: Discover
// over a fake clientset, then hosts: here a node.Fake per node, behind a
// meter that counts the round trips the phases make to it.
type fixture struct {
	t               *testing.T
	lab             *lab
	c               *Cluster
	kube            *fake.Clientset
	fakes           map[string]*node.Fake
	meters          map[string]*meter
	net             *testkit.Net
	console, detail *bytes.Buffer

	mu       sync.Mutex
	handlers map[string][]handler // by node, tried in order
	probes   map[string]*probe
}

// handler answers a command the fixture scripted; ok false passes it on.
type handler func(cmd string) (out string, ok bool, err error)

func newFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	l := getLab(t)
	if s.Opts.Nodes == nil {
		s.Opts.Nodes = []string{"emei", "wudang"}
		if s.Opts.LBNode == "" && s.Opts.LBMode == "" {
			s.Opts.LBNode = "emei"
		}
	}
	if s.Opts.BackupDir == "" {
		s.Opts.BackupDir = t.TempDir()
	}
	kube := newClientset(t, l, s)
	c, err := Discover(t.Context(), kube, s.Opts, !s.NoEndpoint)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	f := &fixture{t: t, lab: l, c: c, kube: kube, fakes: map[string]*node.Fake{}, meters: map[string]*meter{},
		net: testkit.NewNet(), console: &bytes.Buffer{}, detail: &bytes.Buffer{},
		handlers: map[string][]handler{}, probes: map[string]*probe{}}
	c.Log = NewProgress(f.console, f.detail)
	for name, ni := range c.Nodes {
		h := node.NewFake(name)
		files := l.files[name]
		if name == "wutai" {
			// Joined like emei: kubelet.conf pointing at shaolin, the CA.
			files = map[string][]byte{kubeletConf: l.files["emei"][kubeletConf], pkiDir + "/ca.crt": l.caPEM}
		}
		for p, b := range files {
			h.SetFile(p, b, fileMode(p))
		}
		h.SetHandler(func(cmd string) (string, error) {
			f.mu.Lock()
			hs := slices.Clone(f.handlers[name])
			f.mu.Unlock()
			for _, fn := range hs {
				if out, ok, err := fn(cmd); ok {
					return out, err
				}
			}
			return "", &node.CmdError{Node: name, Cmd: cmd, ExitCode: 127, Stderr: []byte("fake node " + name + ": unexpected command")}
		})
		h.SetDial(f.net.Dialer(name))
		f.fakes[name] = h
		f.meters[name] = &meter{Host: h, n: map[string]int{}}
		c.Hosts[name] = f.meters[name]
		// What preflight's probe prints on a healthy lab node.
		f.probes[name] = &probe{
			addrs: fmt.Sprintf("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"+
				"2: eth0    inet %s/24 brd 10.250.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n", ni.IP),
			nginx:       healthyNginx,
			nginxActive: "inactive\ninactive\n",
			freeKiB:     "52428800\n",
			resolved:    "-\n",
		}
		f.respondProbe(name)
		// Every image the static pods need is there; nginx takes the
		// rendered configuration.
		h.Respond("if crictl inspecti", "", nil)
		h.Respond("if t=$(mktemp /tmp/haadm-lb-", "", nil)
		// Whether the static-pod directory exists, as the shell would say.
		f.handle(name, func(cmd string) (string, bool, error) {
			if cmd != "[ -d "+manifestsDir+" ] || echo absent" {
				return "", false, nil
			}
			for _, p := range h.Files() {
				if p == manifestsDir || strings.HasPrefix(p, manifestsDir+"/") {
					return "", true, nil
				}
			}
			return "absent\n", true, nil
		})
	}
	// As a full promote: preflight checks the images the static pods need.
	c.needsImages = true
	t.Cleanup(c.closeEtcd)
	return f
}

// handle scripts commands on a node; handlers added later are tried last.
func (f *fixture) handle(nodeName string, h handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[nodeName] = append(f.handlers[nodeName], h)
}

// probe is what preflight's one command per node prints, by section.
type probe struct {
	addrs       string // ip -o addr show
	listen      string // ss -Htlnp
	etcdData    string // ls -A /var/lib/etcd
	nginx       string // the LB programs missing (missing=nginx) and the package manager (pm=apt-get)
	nginxActive string // systemctl is-active nginx keepalived: active, inactive, ...
	freeKiB     string // df -Pk /var/lib: available KiB
	resolved    string // what the endpoint's name resolves to; "-" when it needs none
}

// healthyNginx is a Debian node with everything the LB needs, as the
// probe sees it.
const healthyNginx = "pm=apt-get\n"

// noNginx is a Debian node without nginx.
const noNginx = "missing=nginx\npm=apt-get\n"

// probeSep separates the probe's sections, as its printf writes it.
const probeSep = "\n--haadm--\n"

// setProbe changes what preflight's probe finds on a node.
func (f *fixture) setProbe(nodeName string, edit func(p *probe)) {
	f.mu.Lock()
	edit(f.probes[nodeName])
	f.mu.Unlock()
	f.respondProbe(nodeName)
}

// respondProbe answers the probe: its script starts with `ip -o addr show`.
func (f *fixture) respondProbe(nodeName string) {
	f.mu.Lock()
	p := *f.probes[nodeName]
	f.mu.Unlock()
	f.fakes[nodeName].Respond("ip -o addr show", strings.Join([]string{p.addrs, p.listen, p.etcdData, p.nginx, p.nginxActive, p.freeKiB, p.resolved}, probeSep), nil)
}

// meter counts the calls that reach a node, by method: each is one round
// trip over SSH (a dial opens a channel, counted apart).
type meter struct {
	node.Host
	mu sync.Mutex
	n  map[string]int
	// written, when set, is told each batch WriteFiles wrote.
	written func(files []node.File)
}

func (m *meter) count(method string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[method]++
}

func (m *meter) Output(ctx context.Context, cmd string) (string, error) {
	m.count("Output")
	return m.Host.Output(ctx, cmd)
}

func (m *meter) Run(ctx context.Context, cmd string) (string, error) {
	m.count("Run")
	return m.Host.Run(ctx, cmd)
}

func (m *meter) ReadFile(ctx context.Context, path string) ([]byte, error) {
	m.count("ReadFile")
	return m.Host.ReadFile(ctx, path)
}

func (m *meter) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	m.count("WriteFile")
	return m.Host.WriteFile(ctx, path, data, mode)
}

func (m *meter) ReadFiles(ctx context.Context, paths []string) (map[string]node.File, error) {
	m.count("ReadFiles")
	return m.Host.ReadFiles(ctx, paths)
}

func (m *meter) WriteFiles(ctx context.Context, files []node.File) error {
	m.count("WriteFiles")
	err := m.Host.WriteFiles(ctx, files)
	m.mu.Lock()
	hook := m.written
	m.mu.Unlock()
	if err == nil && hook != nil {
		hook(files)
	}
	return err
}

func (m *meter) Upload(ctx context.Context, s node.Stream) error {
	m.count("Upload")
	return m.Host.Upload(ctx, s)
}

func (m *meter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	m.count("Dial")
	return m.Host.DialContext(ctx, network, addr)
}

// counts returns a copy of the counts so far.
func (m *meter) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.n)
}

// trips is the number of round trips to a node so far, dials left out.
func (f *fixture) trips(nodeName string) int {
	n := 0
	for k, v := range f.meters[nodeName].counts() {
		if k != "Dial" {
			n += v
		}
	}
	return n
}

// newClientset holds what the lab's API served: its nodes and kubeadm's
// ConfigMaps as captured, plus the objects the capture lacks (kube-proxy's
// DaemonSet, node Leases, a bootstrap token), made the way a kubeadm
// cluster has them.
func newClientset(t *testing.T, l *lab, s setup) *fake.Clientset {
	t.Helper()
	var list corev1.NodeList
	if err := yaml.Unmarshal(l.nodes, &list); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*corev1.Node{}
	for i := range list.Items {
		nodes[list.Items[i].Name] = &list.Items[i]
	}
	if s.Worker {
		w := nodes["emei"].DeepCopy()
		w.Name, w.UID = "wutai", "b4d1a2c3-0000-4000-8000-000000000014"
		w.Labels["kubernetes.io/hostname"] = "wutai"
		w.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: wutaiIP}, {Type: corev1.NodeHostName, Address: "wutai"}}
		nodes["wutai"] = w
	}
	if s.EditNodes != nil {
		s.EditNodes(nodes)
	}
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
		// The kubelet's lease, last renewed before any restart a test does.
		renewed := metav1.NewMicroTime(time.Now().Add(-5 * time.Second))
		objs = append(objs, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: "kube-node-lease"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &n.Name, RenewTime: &renewed},
		})
	}
	cms := map[string][]byte{"cluster-info": l.clusterInfo, "kube-proxy": l.kubeProxy, "kubeadm-config": l.kubeadmConfig, "kubelet-config": l.kubeletConfig}
	for name, b := range cms {
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal(b, &cm); err != nil {
			t.Fatal(err)
		}
		if name == "cluster-info" {
			sig, err := jws.ComputeDetachedSignature(cm.Data["kubeconfig"], tokenID, tokenSecret)
			if err != nil {
				t.Fatal(err)
			}
			cm.Data["jws-kubeconfig-"+tokenID] = sig
		}
		objs = append(objs, &cm)
	}
	objs = append(objs, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + tokenID, Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		Data: map[string][]byte{"token-id": []byte(tokenID), "token-secret": []byte(tokenSecret),
			"usage-bootstrap-authentication": []byte("true"), "usage-bootstrap-signing": []byte("true")},
	}, kubeProxyDaemonSet(len(nodes)))
	objs = append(objs, s.Objects...)
	return fake.NewClientset(objs...)
}

// kubeProxyDaemonSet is kubeadm's kube-proxy DaemonSet, rolled out on every node.
func kubeProxyDaemonSet(nodes int) *appsv1.DaemonSet {
	labels := map[string]string{"k8s-app": "kube-proxy"}
	n := int32(nodes)
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system", Labels: labels, Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:" + labVersion,
					Command: []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"},
				}}},
			},
		},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: n, CurrentNumberScheduled: n,
			UpdatedNumberScheduled: n, NumberAvailable: n, NumberReady: n},
	}
}

// runBootstrapSigner re-signs cluster-info on every update, as the
// controller-manager's bootstrap signer does.
func (f *fixture) runBootstrapSigner() {
	f.kube.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm, ok := a.(k8stesting.UpdateAction).GetObject().(*corev1.ConfigMap)
		if !ok || cm.Namespace != "kube-public" || cm.Name != "cluster-info" {
			return false, nil, nil
		}
		sig, err := jws.ComputeDetachedSignature(cm.Data["kubeconfig"], tokenID, tokenSecret)
		if err != nil {
			return true, nil, err
		}
		cm.Data["jws-kubeconfig-"+tokenID] = sig
		return false, nil, nil // the tracker stores the signed object
	})
}

// renewLeaseOnRestart makes `systemctl restart kubelet` on each fake behave
// like the lab's: the restarted kubelet renews its node's lease.
func (f *fixture) renewLeaseOnRestart() {
	for name := range f.fakes {
		f.handle(name, func(cmd string) (string, bool, error) {
			if cmd != "systemctl restart kubelet" {
				return "", false, nil
			}
			leases := f.kube.CoordinationV1().Leases("kube-node-lease")
			l, err := leases.Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return "", true, err
			}
			now := metav1.NewMicroTime(time.Now().Add(time.Millisecond))
			l.Spec.RenewTime = &now
			_, err = leases.Update(context.Background(), l, metav1.UpdateOptions{})
			return "", true, err
		})
	}
}

// setFile puts a file on a fake without recording a call, with the mode
// kubeadm gives it.
func (f *fixture) setFile(nodeName, path string, data []byte) {
	f.fakes[nodeName].SetFile(path, data, fileMode(path))
}

// file returns a file of a fake node, failing the test if it is missing.
func (f *fixture) file(nodeName, path string) ([]byte, fs.FileMode) {
	f.t.Helper()
	b, mode, ok := f.fakes[nodeName].File(path)
	if !ok {
		f.t.Fatalf("%s: %s is missing", nodeName, path)
	}
	return b, mode
}

// cert parses a certificate on a fake node.
func (f *fixture) cert(nodeName, name string) *x509.Certificate {
	f.t.Helper()
	b, _ := f.file(nodeName, pkiDir+"/"+name+".crt")
	c, err := certs.ParseCertPEM(b)
	if err != nil {
		f.t.Fatalf("%s: %s.crt: %v", nodeName, name, err)
	}
	return c
}

// writes lists the paths each fake was asked to write since the last reset.
func (f *fixture) writes() map[string][]string {
	out := map[string][]string{}
	for name, h := range f.fakes {
		for _, c := range h.Calls() {
			if c.Kind == node.CallWrite {
				out[name] = append(out[name], c.Path)
			}
		}
	}
	return out
}

// calls returns the calls of one kind a fake saw, as Cmd or Path.
func (f *fixture) calls(nodeName string, kind node.CallKind) []string {
	var out []string
	for _, c := range f.fakes[nodeName].Calls() {
		if c.Kind != kind {
			continue
		}
		switch kind {
		case node.CallRun, node.CallOutput:
			out = append(out, c.Cmd)
		case node.CallDial:
			out = append(out, c.Addr)
		default:
			out = append(out, c.Path)
		}
	}
	return out
}

// mutations lists the clientset actions that change something.
func (f *fixture) mutations() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		name := ""
		if u, ok := a.(k8stesting.UpdateAction); ok {
			if o, ok := u.GetObject().(metav1.Object); ok {
				name = o.GetName()
			}
		}
		out = append(out, a.GetVerb()+" "+a.GetResource().Resource+" "+a.GetNamespace()+"/"+name)
	}
	return out
}

// serveAPIServer answers https://addr/readyz with status, presenting the
// serving certificate that nodeName has on disk at the moment of each
// handshake, as kube-apiserver does (it reloads it). Dials to addr from any
// node reach it; an addr of the form "emei>127.0.0.1:6444" only from emei.
func (f *fixture) serveAPIServer(nodeName, addr string, status int) *httptest.Server {
	f.t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprint(w, "ok")
		} else {
			fmt.Fprint(w, "[-]etcd failed: reason withheld\nreadyz check failed")
		}
	}))
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		crt, _, ok1 := f.fakes[nodeName].File(pkiDir + "/apiserver.crt")
		key, _, ok2 := f.fakes[nodeName].File(pkiDir + "/apiserver.key")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s has no apiserver certificate", nodeName)
		}
		pair, err := tls.X509KeyPair(crt, key)
		return &pair, err
	}}
	// Handshakes a test makes fail on purpose would be logged to stderr.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	// Not StartTLS: it adds httptest's own certificate, which crypto/tls
	// prefers to GetCertificate when the client sends no SNI (it never does
	// for an IP address).
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	f.t.Cleanup(srv.Close)
	if from, a, ok := strings.Cut(addr, ">"); ok {
		f.net.RouteFrom(from, a, srv.Listener.Addr().String())
	} else {
		f.net.Route(addr, srv.Listener.Addr().String())
	}
	return srv
}

// testCtx bounds a test step that waits (the phases wait minutes), so that
// a regression fails fast instead of hanging the package.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// keyOf returns the public key in a PEM private key, for comparisons.
func keyOf(t *testing.T, keyPEM []byte) crypto.PublicKey {
	t.Helper()
	k, err := certs.ParseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// sameKey reports whether two public keys are the same.
func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// verifyChain checks that cert chains to ca for usage, as TLS peers will.
func verifyChain(t *testing.T, cert, ca *x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("%s does not verify against %s: %v", cert.Subject.CommonName, ca.Subject.CommonName, err)
	}
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

func containsAll(t *testing.T, what string, have, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(have, w) {
			t.Errorf("%s: %q missing from %q", what, w, have)
		}
	}
}

func mustContain(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q does not mention %q", s, w)
		}
	}
}

// startEtcd runs shaolin's etcd for real, embedded, the way its static pod
// does: TLS with shaolin's etcd/server certificate, client certificates
// required (signed by etcd/ca), advertising the lab addresses. It listens on
// loopback; the fake network routes 10.250.0.11:2379 there, so haadm reaches
// it exactly as in the lab: through shaolin's DialContext.
func (f *fixture) startEtcd() *embed.Etcd {
	f.t.Helper()
	dir := f.t.TempDir()
	write := func(name string) string {
		b, _ := f.file("shaolin", pkiDir+"/"+name)
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "-"))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			f.t.Fatal(err)
		}
		return p
	}
	cfg := embed.NewConfig()
	cfg.Name = "shaolin"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// Faster elections than the defaults keep the tests short.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	client, peer := freeAddr(f.t), freeAddr(f.t)
	cfg.ListenClientUrls = []url.URL{{Scheme: "https", Host: client}}
	cfg.AdvertiseClientUrls = []url.URL{{Scheme: "https", Host: net.JoinHostPort(shaolinIP, "2379")}}
	// A single member never dials its own peer URL, so plain http on
	// loopback is enough to listen; it advertises the lab's.
	cfg.ListenPeerUrls = []url.URL{{Scheme: "http", Host: peer}}
	cfg.AdvertisePeerUrls = []url.URL{{Scheme: "https", Host: net.JoinHostPort(shaolinIP, "2380")}}
	cfg.InitialCluster = "shaolin=https://" + net.JoinHostPort(shaolinIP, "2380")
	cfg.InitialClusterToken = "haadm-phases-test"
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: write("etcd/server.crt"), KeyFile: write("etcd/server.key"),
		TrustedCAFile: write("etcd/ca.crt"), ClientCertAuth: true,
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		f.t.Fatalf("starting etcd: %v", err)
	}
	f.t.Cleanup(func() {
		e.Close()
		if b, err := os.ReadFile(cfg.LogOutputs[0]); f.t.Failed() && err == nil && len(b) > 0 {
			f.t.Logf("etcd log:\n%s", b)
		}
	})
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		f.t.Fatalf("etcd failed: %v", err)
	case <-time.After(20 * time.Second):
		f.t.Fatal("etcd not ready after 20s")
	}
	f.net.Route(net.JoinHostPort(shaolinIP, "2379"), client)
	return e
}

// freeAddr picks a loopback port that is free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// check plans p and sums the plan up the way the old Check did: done when
// nothing is left to do, why the steps' "node: what", waits left out.
func check(ctx context.Context, p Phase, c *Cluster) (done bool, why string, err error) {
	w, err := p.Plan(ctx, c)
	if err != nil {
		return false, "", err
	}
	var s []string
	for _, st := range w.Steps {
		if !st.Wait {
			s = append(s, stepName(st))
		}
	}
	return w.Empty(), strings.Join(s, ", "), nil
}

// apply plans p and applies the plan, as Run does for one phase.
func apply(ctx context.Context, p Phase, c *Cluster) error {
	w, err := p.Plan(ctx, c)
	if err != nil {
		return err
	}
	if w.Empty() {
		return nil
	}
	return w.apply(ctx, p.Name(), c.Log)
}

// plan plans p, failing the test on error.
func plan(t *testing.T, ctx context.Context, p Phase, c *Cluster) *Work {
	t.Helper()
	w, err := p.Plan(ctx, c)
	if err != nil {
		t.Fatalf("%s: Plan: %v", p.Name(), err)
	}
	if w == nil {
		t.Fatalf("%s: Plan returned no Work", p.Name())
	}
	return w
}

// stepName is "node: what", or "what" for a step on the cluster.
func stepName(s Step) string {
	if s.Node == "" {
		return s.What
	}
	return s.Node + ": " + s.What
}

// stepsOf lists a plan's steps as "node: what", waits marked "(wait)".
func stepsOf(w *Work) []string {
	var out []string
	for _, s := range w.Steps {
		n := stepName(s)
		if s.Wait {
			n += " (wait)"
		}
		out = append(out, n)
	}
	return out
}

// detailsOf joins every detail of a plan's steps on node ("" for all).
func detailsOf(w *Work, nodeName string) string {
	var b strings.Builder
	for _, s := range w.Steps {
		if nodeName != "" && s.Node != nodeName {
			continue
		}
		for _, d := range s.Details {
			b.WriteString(d)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// noKeyMaterial fails when text shows a private key or an inline
// kubeconfig credential.
func noKeyMaterial(t *testing.T, what, text string) {
	t.Helper()
	for _, bad := range []string{"PRIVATE KEY", "client-key-data: LS0t", "client-key-data: \"LS0t"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s shows key material (%q)", what, bad)
		}
	}
}

// unchanged fails when any fake saw a write or a command that changes
// state, or the API saw a change: what a plan or a dry run must leave alone.
func (f *fixture) unchanged(t *testing.T) {
	t.Helper()
	for n := range f.fakes {
		if w := f.calls(n, node.CallWrite); len(w) != 0 {
			t.Errorf("%s: wrote %v", n, w)
		}
		if r := f.calls(n, node.CallRun); len(r) != 0 {
			t.Errorf("%s: ran %v", n, r)
		}
	}
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("API changes: %v", m)
	}
}

// fakeEtcd is an etcd whose membership a test sets, for what no unit test
// can have for real: a second member that started (its etcd would need the
// lab's network). It answers member list and status; anything else fails.
type fakeEtcd struct {
	clientv3.Cluster
	clientv3.Maintenance
	mu      sync.Mutex
	members []*etcdserverpb.Member
	snapErr error
}

// useFakeEtcd makes the cluster's etcd client a fakeEtcd with members.
func (f *fixture) useFakeEtcd(members ...*etcdserverpb.Member) *fakeEtcd {
	fe := &fakeEtcd{members: members}
	fe.attach(f.c)
	return fe
}

// attach makes fe the etcd of c.
func (fe *fakeEtcd) attach(c *Cluster) {
	cli := clientv3.NewCtxClient(context.Background())
	cli.Cluster, cli.Maintenance = fe, fe
	c.etcd.mu.Lock()
	defer c.etcd.mu.Unlock()
	c.etcd.cli = cli
}

// voter is the started voting member of the node at ip.
func voter(id uint64, name, ip string) *etcdserverpb.Member {
	return &etcdserverpb.Member{ID: id, Name: name, PeerURLs: []string{controlplane.EtcdPeerURL(ip)}, ClientURLs: []string{controlplane.EtcdClientURL(ip)}}
}

// labVoters is the lab's etcd after a promotion: a voter on every master.
func labVoters() []*etcdserverpb.Member {
	return []*etcdserverpb.Member{voter(1, "shaolin", shaolinIP), voter(2, "emei", emeiIP), voter(3, "wudang", wudangIP)}
}

func (fe *fakeEtcd) MemberList(ctx context.Context, _ ...clientv3.OpOption) (*clientv3.MemberListResponse, error) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	out := &clientv3.MemberListResponse{Header: &etcdserverpb.ResponseHeader{}}
	for _, m := range fe.members {
		out.Members = append(out.Members, &etcdserverpb.Member{ID: m.ID, Name: m.Name, IsLearner: m.IsLearner,
			PeerURLs: slices.Clone(m.PeerURLs), ClientURLs: slices.Clone(m.ClientURLs)})
	}
	return out, ctx.Err()
}

// Status answers for the member advertising endpoint: healthy, the first
// voter leading.
func (fe *fakeEtcd) Status(ctx context.Context, endpoint string) (*clientv3.StatusResponse, error) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	var leader uint64
	for _, m := range fe.members {
		if !m.IsLearner && leader == 0 {
			leader = m.ID
		}
	}
	for _, m := range fe.members {
		if slices.Contains(m.ClientURLs, endpoint) {
			return &clientv3.StatusResponse{Header: &etcdserverpb.ResponseHeader{MemberId: m.ID}, Leader: leader, IsLearner: m.IsLearner}, nil
		}
	}
	return nil, fmt.Errorf("fake etcd: no member at %s", endpoint)
}

// SnapshotWithVersion streams a snapshot that passes etcdm's checks: one
// empty 4 KiB page and its sha256 trailer, unless snapErr is set.
func (fe *fakeEtcd) SnapshotWithVersion(context.Context) (*clientv3.SnapshotResponse, error) {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fe.snapErr != nil {
		return nil, fe.snapErr
	}
	db := make([]byte, 4096)
	sum := sha256.Sum256(db)
	return &clientv3.SnapshotResponse{Snapshot: io.NopCloser(bytes.NewReader(append(db, sum[:]...))), Version: "3.6.0"}, nil
}
