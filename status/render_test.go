package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// degradedReport is a promotion that stopped halfway: wudang's etcd is a
// learner that does not answer, emei's kubelet still uses the first
// master, and the load balancer cannot reach wudang.
func degradedReport() *Report {
	r := haReport()
	m := &r.Etcd.Members[2]
	m.Learner, m.Healthy, m.Error = true, false, "context deadline exceeded"
	m.RaftIndex, m.RaftTerm, m.DBSize, m.Version = 0, 0, 0, ""
	a := &r.APIServers[2]
	a.Ready, a.Error = false, "readyz: HTTP 500: etcd failed: reason withheld"
	a.SANsMissing = []string{"IP:10.250.0.12"}
	k := &r.Kubeconfigs[1]
	k.Server, k.Target, k.OK = "https://10.250.0.11:6443", "node/shaolin", false
	b := &r.LoadBalancers[0].Backends[2]
	b.Up, b.Error = false, "readyz: HTTP 500: etcd failed: reason withheld"
	r.Unreachable = []NodeError{{Node: "huashan", Error: "unreachable: no connection within 3s: context deadline exceeded"}}
	r.Nodes = append(r.Nodes, Node{Name: "huashan", IP: "10.250.0.14", Ready: false, KubeletVersion: "v1.36.3"})
	r.Verdict, r.Reasons = Judge(r)
	return r
}

func TestRenderGolden(t *testing.T) {
	reports := map[string]*Report{
		"ha":            haReport(),
		"degraded":      degradedReport(),
		"single-master": singleMasterReport(),
	}
	for name, r := range reports {
		for _, format := range Formats() {
			t.Run(name+"."+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := Render(&b, r, format); err != nil {
					t.Fatal(err)
				}
				checkGolden(t, name+"."+format, b.Bytes())
			})
		}
	}
}

func TestRenderRoundTrip(t *testing.T) {
	r := degradedReport()
	for _, format := range []string{FormatJSON, FormatYAML} {
		var b bytes.Buffer
		if err := Render(&b, r, format); err != nil {
			t.Fatal(err)
		}
		var back Report
		var err error
		if format == FormatJSON {
			err = json.Unmarshal(b.Bytes(), &back)
		} else {
			dec := yaml.NewDecoder(&b)
			dec.KnownFields(true)
			err = dec.Decode(&back)
		}
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		again, _ := json.Marshal(&back)
		orig, _ := json.Marshal(r)
		if !bytes.Equal(again, orig) {
			t.Errorf("%s round trip changed the report:\n%s\n%s", format, orig, again)
		}
	}
}

// TestJSONStableShape pins what scripts rely on: lists are [] not null,
// and error fields are absent when empty.
func TestJSONStableShape(t *testing.T) {
	// Nothing to read at all: no client, no hosts, no etcd.
	empty := Collect(t.Context(), Inputs{})
	var b bytes.Buffer
	if err := Render(&b, empty, FormatJSON); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if strings.Contains(s, "null") {
		t.Errorf("null in JSON:\n%s", s)
	}
	for _, key := range []string{`"schemaVersion": 1`, `"verdict": "degraded"`, `"members": []`, `"apiservers": []`, `"loadBalancers": []`} {
		if !strings.Contains(s, key) {
			t.Errorf("missing %s in\n%s", key, s)
		}
	}
	if ExitCode(empty) != ExitNoAPI {
		t.Errorf("no API: exit %d", ExitCode(empty))
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if err := Render(&bytes.Buffer{}, haReport(), "xml"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("Render(xml) = %v", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "", 999: "999 B", 1000: "1.0 kB", 1843200: "1.8 MB", 2147483648: "2.1 GB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
