package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// config is the bench's settings, from the environment.
type config struct {
	repo  string // the repository (lab/lab.sh, .lab/)
	haadm string
	out   string
	runs  int
	// only is BENCH_ONLY's items; empty runs everything.
	only    []string
	onlyRaw string
}

// configure reads the settings for the repository at repo.
func configure(getenv func(string) string, repo string) (config, error) {
	if _, err := os.Stat(filepath.Join(repo, "lab/lab.sh")); err != nil {
		return config{}, fmt.Errorf("run from the repository's top (make bench): %w", err)
	}
	c := config{repo: repo, runs: 3, haadm: filepath.Join(repo, "bin/haadm"), out: filepath.Join(repo, "bench/results")}
	if v := getenv("BENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("BENCH_RUNS=%q: want a number of 1 or more", v)
		}
		c.runs = n
	}
	if v := getenv("HAADM"); v != "" {
		c.haadm, _ = filepath.Abs(v)
	}
	if _, err := os.Stat(c.haadm); err != nil {
		return config{}, fmt.Errorf("haadm binary: %w (make bench builds it)", err)
	}
	if v := strings.TrimSpace(getenv("BENCH_ONLY")); v != "" {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if !validOnly(item) {
				return config{}, fmt.Errorf("BENCH_ONLY item %q: want promote, kubeadm, failover[:vip|:node-local] or scale[:2..5]", item)
			}
			c.only = append(c.only, item)
		}
		c.onlyRaw = strings.Join(c.only, ",")
		// A partial bench must not overwrite the committed results.
		c.out = filepath.Join(c.out, "only-"+strings.NewReplacer(",", "-", ":", "-").Replace(c.onlyRaw))
	}
	if v := getenv("BENCH_OUT"); v != "" {
		c.out, _ = filepath.Abs(v)
	}
	return c, nil
}

func validOnly(item string) bool {
	switch item {
	case "promote", "kubeadm", "failover", "failover:vip", "failover:node-local", "scale",
		"scale:2", "scale:3", "scale:4", "scale:5":
		return true
	}
	return false
}

// wants says whether scenario (with its detail: the LB mode, the number
// of masters) is to run.
func (c config) wants(scenario, detail string) bool {
	if len(c.only) == 0 {
		return true
	}
	for _, o := range c.only {
		if o == scenario || o == scenario+":"+detail {
			return true
		}
	}
	return false
}
