package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo is a directory that looks like the repository to configure.
func repo(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, f := range []string{"lab/lab.sh", "bin/haadm"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(d, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigure(t *testing.T) {
	t.Parallel()
	d := repo(t)
	c, err := configure(env(nil), d)
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 3 || c.out != filepath.Join(d, "bench/results") || len(c.only) != 0 {
		t.Errorf("defaults: %+v", c)
	}
	if !c.wants("scale", "4") || !c.wants("failover", "vip") {
		t.Error("without BENCH_ONLY everything runs")
	}

	c, err = configure(env(map[string]string{"BENCH_RUNS": "1", "BENCH_ONLY": "promote, failover:vip"}), d)
	if err != nil {
		t.Fatal(err)
	}
	if c.runs != 1 || c.out != filepath.Join(d, "bench/results/only-promote-failover-vip") {
		t.Errorf("BENCH_ONLY: %+v", c)
	}
	for _, tc := range []struct {
		scenario, detail string
		want             bool
	}{{"promote", "", true}, {"failover", "vip", true}, {"failover", "node-local", false}, {"kubeadm", "", false}, {"scale", "2", false}} {
		if got := c.wants(tc.scenario, tc.detail); got != tc.want {
			t.Errorf("wants(%s, %s) = %v", tc.scenario, tc.detail, got)
		}
	}
}

func TestConfigureRefuses(t *testing.T) {
	t.Parallel()
	d := repo(t)
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"BENCH_RUNS": "0"}, "BENCH_RUNS"},
		{map[string]string{"BENCH_RUNS": "x"}, "BENCH_RUNS"},
		{map[string]string{"BENCH_ONLY": "promote,scale:9"}, `"scale:9"`},
		{map[string]string{"HAADM": filepath.Join(d, "nope")}, "haadm binary"},
	} {
		if _, err := configure(env(tc.env), d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
	if _, err := configure(env(nil), t.TempDir()); err == nil || !strings.Contains(err.Error(), "lab/lab.sh") {
		t.Errorf("outside the repository: %v", err)
	}
}
