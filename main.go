// Command haadm grows a running single-master kubeadm cluster into a highly
// available control plane, in place.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/haadm/haadm/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
