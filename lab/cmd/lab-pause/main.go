// lab-pause is the lab's pause image: it holds a pod's namespaces open and
// exits on SIGTERM or SIGINT, which is all the real pause does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
