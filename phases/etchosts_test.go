package phases

import (
	"strings"
	"testing"
)

func TestWithHostsEntry(t *testing.T) {
	t.Parallel()
	base := "127.0.0.1 localhost\n10.250.0.11 shaolin\n"
	once := string(withHostsEntry([]byte(base), "10.250.0.12", "k8s-api.lab"))
	if once != base+"10.250.0.12 k8s-api.lab "+etcHostsMarker+"\n" {
		t.Errorf("first write:\n%s", once)
	}
	if again := string(withHostsEntry([]byte(once), "10.250.0.12", "k8s-api.lab")); again != once {
		t.Errorf("second write changed it:\n%s", again)
	}
	moved := string(withHostsEntry([]byte(once), "10.250.0.13", "k8s-api.lab"))
	if strings.Count(moved, etcHostsMarker) != 1 || !strings.Contains(moved, "10.250.0.13 k8s-api.lab") || !strings.HasPrefix(moved, base) {
		t.Errorf("a new address must replace haadm's line only:\n%s", moved)
	}
	if got := string(withHostsEntry([]byte("127.0.0.1 localhost"), "10.0.0.1", "api")); got != "127.0.0.1 localhost\n10.0.0.1 api "+etcHostsMarker+"\n" {
		t.Errorf("no final newline: %q", got)
	}
}

// TestEtcHostsPhase: every node gets the line once; without --etc-hosts the
// phase has nothing to do.
func TestEtcHostsPhase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true, Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", Endpoint: "k8s-api.lab:6443", EtcHosts: "10.250.0.100"}})
	for n := range f.fakes {
		f.setFile(n, etcHosts, []byte("127.0.0.1 localhost\n"))
	}
	ctx := testCtx(t, 10*1e9)
	if err := apply(ctx, EtcHosts{}, f.c); err != nil {
		t.Fatal(err)
	}
	for n := range f.fakes {
		data, mode := f.file(n, etcHosts)
		if string(data) != "127.0.0.1 localhost\n10.250.0.100 k8s-api.lab "+etcHostsMarker+"\n" || mode != 0o644 {
			t.Errorf("%s: %q %o", n, data, mode)
		}
	}
	if done, why, err := check(ctx, EtcHosts{}, f.c); err != nil || !done {
		t.Errorf("second plan: %v %s %v", done, why, err)
	}
	g := newFixture(t, setup{})
	if done, _, err := check(ctx, EtcHosts{}, g.c); err != nil || !done {
		t.Errorf("without --etc-hosts: %v %v", done, err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{Nodes: []string{"emei", "emei"}}, "--nodes names emei twice"},
		{Options{Nodes: []string{"Emei_1"}}, `--nodes "Emei_1" is not a node name`},
		{Options{Nodes: []string{"emei"}, CertSANs: []string{"api.example.com", "10.0.0.1", "*.k8s.example", "bad name"}}, `--cert-sans "bad name"`},
		{Options{Nodes: []string{"emei"}, Endpoint: "api.example:99999"}, `--endpoint "api.example:99999": bad port`},
		{Options{Nodes: []string{"emei"}, Endpoint: "no-port"}, `--endpoint "no-port": want HOST:PORT`},
		{Options{Nodes: []string{"emei"}, LBMode: "vrrp"}, `--lb-mode "vrrp"`},
		{Options{Nodes: []string{"emei"}, EtcHosts: "10.0.0.1", Endpoint: "10.0.0.1:6443"}, "--etc-hosts needs --endpoint NAME:PORT"},
		{Options{Nodes: []string{"emei"}, EtcHosts: "not-an-ip", Endpoint: "api:6443"}, `--etc-hosts "not-an-ip"`},
	} {
		err := tt.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
	ok := Options{Nodes: []string{"emei", "wudang"}, Endpoint: "api.example.com:8443", CertSANs: []string{"*.k8s.example", "10.0.0.1", "fd00::1"}, EtcHosts: "10.0.0.9"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// TestEtcHostsRefusesAnOperatorsLine: a line of the operator's for the
// same name comes first and would win, so haadm refuses before changing.
func TestEtcHostsRefusesAnOperatorsLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", Endpoint: "k8s-api.lab:6443", EtcHosts: "10.250.0.100"}})
	for n := range f.fakes {
		f.setFile(n, etcHosts, []byte("127.0.0.1 localhost\n"))
	}
	f.setFile("wudang", etcHosts, []byte("127.0.0.1 localhost\n10.9.9.9 k8s-api.lab api # old\n"))
	_, _, err := check(t.Context(), EtcHosts{}, f.c)
	if err == nil {
		t.Fatal("plan passed with an operator's line for the name")
	}
	mustContain(t, err.Error(), "node wudang: /etc/hosts already names k8s-api.lab", "10.9.9.9 k8s-api.lab api")
	if otherEntry([]byte("10.0.0.1 k8s-api.lab.example\n"), "k8s-api.lab") != "" {
		t.Error("a longer name is not the same name")
	}
}
