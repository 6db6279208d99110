// lab-pause is the lab's pause image: it holds a pod's namespaces open and
// exits on SIGTERM or SIGINT, which is all the real pause does. Like the
// real one, `-v` prints its version and exits 0: kubeadm upgrade's health
// check runs a Job of the pause image with -v and waits for it to end.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause.c (haadm lab)")
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
