package lb

import (
	"reflect"
	"strings"
	"testing"
)

// An operator-edited file: other formatting, comments, extra parameters,
// another stream server and upstream, an http block.
const handEdited = `
load_module modules/ngx_stream_module.so;
events{}
http { server { listen 80; } }
stream {
  upstream other { server 192.0.2.1:53; }
  server { listen 53 udp; proxy_pass other; }
  upstream "kube_apiserver"
  {
    # server 10.0.0.9:6443;   commented out
    server 10.250.0.11:6443   weight=2 max_fails=3;server [fd00::12]:6443;
    server emei.lab:6443 backup;
    least_conn;
  }
  server {
    listen   127.0.0.1:6444   so_keepalive=on;
    proxy_pass kube_apiserver;
  }
}
`

func TestParseNginxHandEdited(t *testing.T) {
	got, err := ParseNginxBackends([]byte(handEdited))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.250.0.11:6443", "[fd00::12]:6443", "emei.lab:6443"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backends = %q, want %q", got, want)
	}
	listen, err := ParseNginxListen([]byte(handEdited))
	if err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1:6444" {
		t.Errorf("listen = %q", listen)
	}
}

func TestParseNginxErrors(t *testing.T) {
	cases := []struct{ name, conf, want string }{
		{"empty", "", "no stream upstream kube_apiserver"},
		{"http only", "events {} http { upstream kube_apiserver { server a:1; } }", "no stream upstream"},
		{"no servers", "stream { upstream kube_apiserver { least_conn; } }", "has no server"},
		{"server without address", "stream { upstream kube_apiserver { server; } }", "server without an address"},
		{"unclosed", "stream {\n upstream kube_apiserver {\n server a:1;\n", "unclosed block upstream opened on line 2"},
		{"stray brace", "}", "unexpected }"},
		{"missing semicolon", "stream { upstream kube_apiserver { server a:1 } }", "missing ; after server"},
		{"unterminated quote", "stream { upstream \"kube_apiserver { } }", "unterminated quote"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseNginxBackends([]byte(tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := ParseNginxListen([]byte("stream { server { listen 1; proxy_pass other; } }")); err == nil ||
		!strings.Contains(err.Error(), "no stream server proxies to kube_apiserver") {
		t.Errorf("listen without our server: err = %v", err)
	}
	if _, err := ParseNginxListen([]byte("stream { server { proxy_pass kube_apiserver; } }")); err == nil ||
		!strings.Contains(err.Error(), "has no listen") {
		t.Errorf("server without listen: err = %v", err)
	}
}
