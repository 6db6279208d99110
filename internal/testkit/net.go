package testkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Net is the lab's network as fake nodes see it: every node reaches every
// address, and the test decides which addresses answer by routing them to
// its own loopback listeners (an httptest server, a gRPC server, an
// embedded etcd). An address nobody routed refuses the connection; an
// address of a killed IP swallows the attempt until the caller gives up,
// as a powered-off machine does. The zero value is not usable: NewNet.
type Net struct {
	mu sync.Mutex
	// routes maps "10.250.0.12:6443", or "emei>127.0.0.1:6444" for a route
	// only emei has, to the listener's address.
	routes map[string]string
	dead   map[string]bool
}

// NewNet returns a network where nothing answers yet.
func NewNet() *Net {
	return &Net{routes: map[string]string{}, dead: map[string]bool{}}
}

// Route makes addr (host:port), dialled from any node, reach the listener
// at to.
func (n *Net) Route(addr, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[addr] = to
}

// RouteFrom makes addr reach to only when dialled from node: a loopback
// address is every node's own. It wins over a Route of the same addr.
func (n *Net) RouteFrom(node, addr, to string) { n.Route(node+">"+addr, to) }

// Kill makes every address of ip hang, from every node, until the dialer's
// context ends.
func (n *Net) Kill(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead[ip] = true
}

// Dialer is what node's DialContext does (node.Fake.SetDial takes it).
func (n *Net) Dialer(node string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		n.mu.Lock()
		to, ok := n.routes[node+">"+addr]
		if !ok {
			to, ok = n.routes[addr]
		}
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
}

// Dial dials addr from no node in particular: only Route applies.
func (n *Net) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.Dialer("")(ctx, network, addr)
}

// Listen opens a loopback listener that addr reaches from every node, and
// closes it when the test ends. It suits servers that take a listener
// (gRPC); HTTPS servers have ServeTLS.
func (n *Net) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n.Route(addr, l.Addr().String())
	return l
}

// ServeTLS serves h over TLS with cfg alone on loopback until the test
// ends; route addresses to srv.Listener.Addr().String(). Unlike
// httptest's StartTLS it adds no certificate of its own, which crypto/tls
// would prefer to cfg.GetCertificate when the client sends no SNI (it
// never does for an IP address), and it does not log the handshakes a test
// makes fail on purpose.
func ServeTLS(t testing.TB, cfg *tls.Config, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// ServeTLS serves h with cert on loopback and routes addr (from every
// node) to it, until the test ends.
func (n *Net) ServeTLS(t testing.TB, addr string, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	srv := ServeTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}}, h)
	n.Route(addr, srv.Listener.Addr().String())
	return srv
}
