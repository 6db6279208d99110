// Command bench is issue 10's benchmark, `make bench`: on fresh labs
// (lab/lab.sh), BENCH_RUNS times each, it times haadm promote against
// kubeadm's own control-plane joins, probes the API during the promote,
// cuts the first master off in every LB mode, times status and the
// promote of 2 to 5 masters, and writes bench/results/latest.json,
// latest.md and the plots. Not part of CI: it needs root and the lab.
//
//	BENCH_RUNS    runs of every scenario (3)
//	BENCH_ONLY    a comma list of what to run: promote, kubeadm, failover,
//	              failover:vip, failover:node-local, scale, scale:N
//	              (results then go to bench/results/only-<list>/)
//	BENCH_OUT     where the results go (bench/results)
//	HAADM         the haadm binary (bin/haadm)
//
// LAB_K8S_VERSION and LAB_CACHE are handed to the lab as they are.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: the bench; or, first argument failover-probe, the
// failover measurement alone, which the bench runs inside a node's
// network namespace for node-local's endpoint; or, render, the report
// drawn again from latest.json.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "failover-probe" {
		if err := failoverProbeMain(ctx, args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "bench failover-probe: %v\n", err)
			return 1
		}
		return 0
	}
	repo, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "bench: working directory: %v\n", err)
		return 2
	}
	if len(args) > 0 && args[0] == "render" {
		if err := renderMain(args[1:], stderr); err != nil {
			fmt.Fprintf(stderr, "bench render: %v\n", err)
			return 1
		}
		return 0
	}
	cfg, err := configure(getenv, repo)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	b := &bench{cfg: cfg, log: stderr}
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}
