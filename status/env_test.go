package status

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/node"
)

// fixtures is the capture of the single-master lab (lab/capture-testdata.sh).
const fixtures = "../testdata/v1.36"

// fakeNet is the lab's network as the fake nodes see it: each address
// (10.250.0.11:6443, ...) is routed to a loopback listener of the test;
// dead addresses swallow the connection attempt until the caller gives up,
// as a powered-off machine does; anything else is refused.
type fakeNet struct {
	mu     sync.Mutex
	routes map[string]string
	dead   map[string]bool
}

func newFakeNet() *fakeNet {
	return &fakeNet{routes: map[string]string{}, dead: map[string]bool{}}
}

func (n *fakeNet) route(addr, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[addr] = to
}

// kill makes every address of ip hang.
func (n *fakeNet) kill(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead[ip] = true
}

func (n *fakeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(addr)
	n.mu.Lock()
	to, ok := n.routes[addr]
	dead := n.dead[host]
	n.mu.Unlock()
	if dead {
		<-ctx.Done()
		return nil, fmt.Errorf("dial %s %s: %w", network, addr, ctx.Err())
	}
	if !ok {
		return nil, fmt.Errorf("dial %s %s: connect: connection refused", network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

// fixtureHost is a fake node serving the files captured from it.
func fixtureHost(t *testing.T, fn *fakeNet, name string) *node.Fake {
	t.Helper()
	h := node.NewFake(name)
	root := filepath.Join(fixtures, name)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.SetFile("/"+filepath.ToSlash(rel), data, 0o600)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.SetDial(fn.dial)
	answerBatch(h)
	return h
}

// readYAML decodes a captured object (kubectl get -o yaml).
func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtures, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// fixtureObjects are the captured Nodes and ConfigMaps.
func fixtureObjects(t *testing.T) (nodes []*corev1.Node, cms map[string]*corev1.ConfigMap) {
	t.Helper()
	var list corev1.NodeList
	readYAML(t, "nodes.yaml", &list)
	for i := range list.Items {
		nodes = append(nodes, &list.Items[i])
	}
	cms = map[string]*corev1.ConfigMap{}
	for _, name := range []string{"kubeadm-config", "kube-proxy", "cluster-info", "kubelet-config"} {
		cm := &corev1.ConfigMap{}
		readYAML(t, "configmaps/"+name+".yaml", cm)
		cms[name] = cm
	}
	return nodes, cms
}

// apiserverPod is the mirror pod of node's kube-apiserver, made from the
// captured static pod manifest with node's address.
func apiserverPod(t *testing.T, name, ip string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	readYAML(t, "shaolin/etc/kubernetes/manifests/kube-apiserver.yaml", pod)
	pod.Name = "kube-apiserver-" + name
	pod.Spec.NodeName = name
	pod.Annotations[advertiseAnnotation] = ip + ":6443"
	return pod
}

// fakeAPIServer is an HTTPS server answering /readyz and /version like a
// kube-apiserver, with a certificate of the given SANs.
type fakeAPIServer struct {
	mu    sync.Mutex
	ready bool
}

func (f *fakeAPIServer) setReady(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = v
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ready := f.ready
	f.mu.Unlock()
	switch r.URL.Path {
	case "/readyz":
		if !ready {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n")
			return
		}
		io.WriteString(w, "ok")
	case "/version":
		json.NewEncoder(w).Encode(map[string]string{"major": "1", "minor": "36", "gitVersion": "v1.36.3"})
	default:
		http.NotFound(w, r)
	}
}

// serveTLS starts h on loopback with cert and routes addr to it.
func serveTLS(t *testing.T, fn *fakeNet, addr string, cert tls.Certificate, h http.Handler) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	fn.route(addr, srv.Listener.Addr().String())
}

// testCA is the CA of the kubeadm-pki fixtures, which comes with its key.
func testCA(t *testing.T) *certs.CA {
	t.Helper()
	crt, err := os.ReadFile(filepath.Join(fixtures, "kubeadm-pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(fixtures, "kubeadm-pki", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.LoadCA(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// serving issues a serving certificate for spec.
func serving(t *testing.T, ca *certs.CA, spec certs.Spec, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := certs.NewKey(certs.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := notAfter.Add(-365 * 24 * time.Hour)
	certPEM, err := certs.Issue(ca, spec, key, notBefore, notAfter.Sub(notBefore))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certs.EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// fakeEtcdMember answers MemberList and Status like one etcd member.
type fakeEtcdMember struct {
	pb.UnimplementedClusterServer
	pb.UnimplementedMaintenanceServer
	id     uint64
	leader uint64
	list   func() []*pb.Member
	alarms []string
}

func (m *fakeEtcdMember) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{Header: &pb.ResponseHeader{MemberId: m.id}, Members: m.list()}, nil
}

func (m *fakeEtcdMember) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{
		Header:  &pb.ResponseHeader{MemberId: m.id, RaftTerm: 3},
		Version: "3.6.8", DbSize: 1843200, Leader: m.leader, RaftIndex: 4711, RaftTerm: 3, Errors: m.alarms,
	}, nil
}

// fakeEtcd is an etcd cluster of fake members, each served over TLS on
// loopback and routed from its client URL.
type fakeEtcd struct {
	members []*pb.Member
}

// start serves every member whose IP is not dead in fn; the first member
// is the leader.
func (e *fakeEtcd) start(t *testing.T, fn *fakeNet, cert tls.Certificate) {
	t.Helper()
	list := func() []*pb.Member { return e.members }
	for _, m := range e.members {
		if len(m.ClientURLs) == 0 {
			continue
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
		fake := &fakeEtcdMember{id: m.ID, leader: e.members[0].ID, list: list}
		pb.RegisterClusterServer(s, fake)
		pb.RegisterMaintenanceServer(s, fake)
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		fn.route(strings.TrimPrefix(m.ClientURLs[0], "https://"), lis.Addr().String())
	}
}

// client is the factory Collect gets: like haadm's, it dials every
// member through the node network.
func (e *fakeEtcd) client(fn *fakeNet) func(ctx context.Context) (*clientv3.Client, error) {
	return func(ctx context.Context) (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{
			Context:     ctx,
			Endpoints:   e.members[0].ClientURLs,
			TLS:         &tls.Config{InsecureSkipVerify: true},
			DialTimeout: time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return fn.dial(ctx, "tcp", addr)
			})},
		})
	}
}

func etcdMember(id uint64, name, ip string) *pb.Member {
	return &pb.Member{ID: id, Name: name,
		PeerURLs: []string{"https://" + ip + ":2380"}, ClientURLs: []string{"https://" + ip + ":2379"}}
}

// objects turns typed objects into what fake.NewClientset takes.
func objects[T runtime.Object](list ...T) []runtime.Object {
	out := make([]runtime.Object, 0, len(list))
	for _, o := range list {
		out = append(out, o)
	}
	return out
}
