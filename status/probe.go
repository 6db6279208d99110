package status

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/haadm/haadm/controlplane"
)

// probe asks the apiserver (or load balancer) at hostport whether it is
// ready, over a connection opened from the node called via, within one
// probe timeout. The certificate is not verified but returned: readiness
// is the question, and checking its SANs against what clients use says
// more than a failed handshake would.
func (in *Inputs) probe(ctx context.Context, via, hostport string, withVersion bool) controlplane.ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, in.timeout())
	defer cancel()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return in.dial(ctx, via, network, addr)
	}
	res := controlplane.Probe(ctx, dial, hostport, controlplane.ProbeOptions{Version: withVersion})
	if res.Err != nil {
		// node's dial errors start with "node VIA:", which the report
		// shows in its own column.
		res.Err = errors.New(strings.TrimPrefix(res.Err.Error(), "node "+via+": "))
	}
	return res
}
