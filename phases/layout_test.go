package phases

import (
	"testing"

	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/lb"
)

// TestKeepLayout: a promote without --lb-mode keeps the layout the
// cluster's endpoint has; one that would move the endpoint to a single
// node without being told which is refused.
func TestKeepLayout(t *testing.T) {
	nodes := map[string]NodeInfo{
		"shaolin": {Name: "shaolin", IP: "10.250.0.11"}, "emei": {Name: "emei", IP: "10.250.0.12"},
		"wudang": {Name: "wudang", IP: "10.250.0.13"}, "huashan": {Name: "huashan", IP: "10.250.0.14"},
	}
	for _, tt := range []struct {
		name, endpoint string
		opts           Options
		mode           lb.Mode
		lbNode         string
		want           string // the endpoint, or the error's start
		fails          bool
	}{
		{name: "no endpoint yet: external on the first of --nodes", opts: Options{Nodes: []string{"wudang", "emei"}}, mode: lb.ModeExternal, lbNode: "wudang", want: "10.250.0.13:8443"},
		{name: "the endpoint is a node: it stays the load balancer", endpoint: "10.250.0.12:9443", opts: Options{Nodes: []string{"huashan"}}, mode: lb.ModeExternal, lbNode: "emei", want: "10.250.0.12:9443"},
		{name: "node-local stays node-local", endpoint: "localhost:6444", opts: Options{Nodes: []string{"huashan"}}, mode: lb.ModeNodeLocal, want: "localhost:6444"},
		{name: "a virtual address or a name is not guessed", endpoint: "10.250.0.100:8443", opts: Options{Nodes: []string{"huashan"}}, fails: true, want: "the cluster's endpoint 10.250.0.100:8443 is no node's address: say which layout"},
		{name: "external named, but no node is the endpoint", endpoint: "api.example.com:8443", opts: Options{Nodes: []string{"huashan"}, LBMode: lb.ModeExternal}, fails: true, want: "the cluster's endpoint is api.example.com:8443, no node's address"},
		{name: "vip named: kept", endpoint: "10.250.0.100:8443", opts: Options{Nodes: []string{"huashan"}, LBMode: lb.ModeVIP, VIP: "10.250.0.100"}, mode: lb.ModeVIP, want: "10.250.0.100:8443"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{Nodes: nodes, Opts: tt.opts, apiPort: 6443, Facts: kubeadmcfg.Facts{ControlPlaneEndpoint: tt.endpoint}}
			err := c.resolveEndpoint()
			if tt.fails {
				if err == nil {
					t.Fatalf("resolved %s %s, want a refusal", c.Opts.LBMode, c.Opts.Endpoint)
				}
				mustContain(t, err.Error(), tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Opts.LBMode != tt.mode || c.Opts.LBNode != tt.lbNode && tt.mode == lb.ModeExternal || c.Opts.Endpoint != tt.want {
				t.Errorf("got %s on %q at %s, want %s on %q at %s", c.Opts.LBMode, c.Opts.LBNode, c.Opts.Endpoint, tt.mode, tt.lbNode, tt.want)
			}
		})
	}
}
