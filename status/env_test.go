package status

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/node"
)

// The network, the PKI, the fake apiservers and the captured lab come from
// internal/testkit; what is left here is what only status needs.

// fixtureHost is a fake node serving the files captured from it, that
// answers status's batch read and dials through fn.
func fixtureHost(t *testing.T, fn *testkit.Net, name string) *node.Fake {
	t.Helper()
	files, err := testkit.LabFiles(name)
	if err != nil {
		t.Fatal(err)
	}
	h := node.NewFake(name)
	for p, data := range files {
		h.SetFile(p, data, 0o600)
	}
	h.SetDial(fn.Dialer(name))
	return h
}

// fixtureObjects are the captured Nodes and ConfigMaps.
func fixtureObjects(t *testing.T) (nodes []*corev1.Node, cms map[string]*corev1.ConfigMap) {
	t.Helper()
	list := testkit.LabNodes(t)
	for i := range list {
		nodes = append(nodes, &list[i])
	}
	cms = map[string]*corev1.ConfigMap{}
	for _, name := range []string{"kubeadm-config", "kube-proxy", "cluster-info", "kubelet-config"} {
		cms[name] = testkit.LabConfigMap(t, name)
	}
	return nodes, cms
}

// apiserverPod is the mirror pod of node's kube-apiserver, made from the
// captured static pod manifest with node's address.
func apiserverPod(t *testing.T, name, ip string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	testkit.DecodeYAML(t, testkit.Lab+"/shaolin/etc/kubernetes/manifests/kube-apiserver.yaml", pod)
	pod.Name = "kube-apiserver-" + name
	pod.Spec.NodeName = name
	pod.Annotations[controlplane.AdvertiseAnnotation] = ip + ":6443"
	return pod
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

// start serves every started member; the first member is the leader.
func (e *fakeEtcd) start(t *testing.T, fn *testkit.Net, cert tls.Certificate) {
	t.Helper()
	list := func() []*pb.Member { return e.members }
	for _, m := range e.members {
		if len(m.ClientURLs) == 0 {
			continue
		}
		lis := fn.Listen(t, strings.TrimPrefix(m.ClientURLs[0], "https://"))
		s := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
		fake := &fakeEtcdMember{id: m.ID, leader: e.members[0].ID, list: list}
		pb.RegisterClusterServer(s, fake)
		pb.RegisterMaintenanceServer(s, fake)
		go s.Serve(lis)
		t.Cleanup(s.Stop)
	}
}

// client is the factory Collect gets: like haadm's, it dials every
// member through the node network.
func (e *fakeEtcd) client(fn *testkit.Net) func(ctx context.Context) (*clientv3.Client, error) {
	return func(ctx context.Context) (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{
			Context:     ctx,
			Endpoints:   e.members[0].ClientURLs,
			TLS:         &tls.Config{InsecureSkipVerify: true},
			DialTimeout: time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return fn.Dial(ctx, "tcp", addr)
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
