package etcdm

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// testNode is one embedded etcd on loopback, plain http.
type testNode struct {
	name, peerURL, clientURL string
	dir, logFile             string
	etcd                     *embed.Etcd
	stopOnce                 sync.Once
}

// freeURL picks a loopback port that is free now. Another process could
// take it before etcd binds it; on a test machine that is rare enough.
func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// newTestNode prepares a node whose etcd, once started, lives until t ends,
// even when a subtest of t starts it.
func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	tmp := t.TempDir()
	n := &testNode{
		name:      name,
		peerURL:   freeURL(t),
		clientURL: freeURL(t),
		dir:       filepath.Join(tmp, "data"),
		logFile:   filepath.Join(tmp, "etcd.log"),
	}
	t.Cleanup(func() {
		n.stop()
		if b, err := os.ReadFile(n.logFile); t.Failed() && err == nil && len(b) > 0 {
			t.Logf("etcd %s log:\n%s", n.name, b)
		}
	})
	return n
}

// start runs the node's etcd with the given --initial-cluster and
// --initial-cluster-state, as the etcd static pod on a new node would.
func (n *testNode) start(t *testing.T, initialCluster, state string) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = n.name
	cfg.Dir = n.dir
	cfg.LogLevel = "error"
	// Even at level error etcd logs its own shutdown; keep that out of the
	// test output (newTestNode shows the log if the test fails).
	cfg.LogOutputs = []string{n.logFile}
	cfg.InitialCluster = initialCluster
	cfg.ClusterState = state
	cfg.InitialClusterToken = "etcdm-test"
	// Faster elections than the defaults keep the test short; loopback
	// latency leaves plenty of margin.
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	peer, client := mustURL(t, n.peerURL), mustURL(t, n.clientURL)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("starting etcd %s: %v", n.name, err)
	}
	n.etcd = e
}

func (n *testNode) stop() {
	n.stopOnce.Do(func() {
		if n.etcd != nil {
			n.etcd.Close()
		}
	})
}

// waitReady waits for the node to serve clients; a learner is ready once it
// has published itself to the cluster.
func (n *testNode) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-n.etcd.Server.ReadyNotify():
	case err := <-n.etcd.Err():
		t.Fatalf("etcd %s failed: %v", n.name, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("etcd %s not ready after 20s", n.name)
	}
}

func mustURL(t *testing.T, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}

func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
