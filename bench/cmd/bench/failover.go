package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/internal/probe"
)

// failoverEvery is how often an attempt starts after the cut; each has
// its own connection and requestTimeout, none waits for the last.
const failoverEvery = 100 * time.Millisecond

// failoverWithin gives up on a failover that takes longer.
const failoverWithin = 2 * time.Minute

// preCut is how long writes go through the endpoint before the cut:
// those acknowledged must all be there afterwards.
const preCut = 2 * time.Second

// failoverResult is one failover. Read and Write are seconds from the cut
// to the first success, -1 when none came within failoverWithin.
type failoverResult struct {
	Read  float64 `json:"read_seconds"`
	Write float64 `json:"write_seconds"`
	// AckedBefore are the writes acknowledged before the cut, LostBefore
	// those of them not read back afterwards; AckedAfter and LostAfter
	// the same for the writes acknowledged after it.
	AckedBefore int `json:"acked_before"`
	LostBefore  int `json:"lost_before"`
	AckedAfter  int `json:"acked_after"`
	LostAfter   int `json:"lost_after"`
}

// acks records the ConfigMaps whose create was acknowledged, and when.
type acks struct {
	mu    sync.Mutex
	names map[string]time.Time
}

func (a *acks) add(name string) {
	a.mu.Lock()
	a.names[name] = time.Now()
	a.mu.Unlock()
}

// measureFailover cuts node off the network and times the first read and
// write through server, then reads back every write acknowledged. id
// names this failover's ConfigMaps (label haadm-bench-failover=id). The
// caller brings the node back.
func measureFailover(ctx context.Context, kubeconfig, server, node, id string) (failoverResult, error) {
	var res failoverResult
	read := func(ctx context.Context) error {
		kc, err := freshClient(kubeconfig, server)
		if err != nil {
			return err
		}
		_, err = kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err
	}
	ack := &acks{names: map[string]time.Time{}}
	write := func(ctx context.Context, name string) error {
		kc, err := freshClient(kubeconfig, server)
		if err != nil {
			return err
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: probeNamespace, Labels: map[string]string{"haadm-bench-failover": id}}}
		if _, err := kc.CoreV1().ConfigMaps(probeNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
		ack.add(name)
		return nil
	}
	// The endpoint must answer before the cut, or the figure means nothing.
	if err := waitUntil(ctx, time.Minute, func() error { return attempt(ctx, read) }); err != nil {
		return res, fmt.Errorf("reading through %s before the cut: %w", server, err)
	}

	// Writes every 100 ms for preCut, then the cut.
	var pre sync.WaitGroup
	tk := time.NewTicker(failoverEvery)
	for i, end := 0, time.Now().Add(preCut); time.Now().Before(end); i++ {
		name := fmt.Sprintf("haadm-bench-%s-pre-%d", id, i)
		pre.Go(func() { _ = attempt(ctx, func(ctx context.Context) error { return write(ctx, name) }) })
		<-tk.C
	}
	tk.Stop()
	if err := link(ctx, node, false); err != nil {
		return res, err
	}
	cut := time.Now()

	var both sync.WaitGroup
	var readAfter, writeAfter time.Duration
	both.Go(func() {
		readAfter = probe.FirstSuccess(ctx, cut, failoverEvery, failoverWithin, func(int) error { return attempt(ctx, read) })
	})
	both.Go(func() {
		writeAfter = probe.FirstSuccess(ctx, cut, failoverEvery, failoverWithin, func(i int) error {
			return attempt(ctx, func(ctx context.Context) error { return write(ctx, fmt.Sprintf("haadm-bench-%s-post-%d", id, i)) })
		})
	})
	both.Wait()
	pre.Wait()
	res.Read, res.Write = seconds(readAfter), seconds(writeAfter)
	if readAfter < 0 && writeAfter < 0 {
		return res, fmt.Errorf("no read and no write through %s within %s of cutting %s off", server, failoverWithin, node)
	}
	// The attempts still in flight end within their timeout.
	time.Sleep(requestTimeout + 500*time.Millisecond)

	var there map[string]bool
	err := waitUntil(ctx, time.Minute, func() error {
		kc, err := freshClient(kubeconfig, server)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		l, err := kc.CoreV1().ConfigMaps(probeNamespace).List(ctx, metav1.ListOptions{LabelSelector: "haadm-bench-failover=" + id})
		if err != nil {
			return err
		}
		there = map[string]bool{}
		for _, cm := range l.Items {
			there[cm.Name] = true
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("reading the writes back through %s after the failover: %w", server, err)
	}
	ack.mu.Lock()
	defer ack.mu.Unlock()
	for name, at := range ack.names {
		before := at.Before(cut)
		if before {
			res.AckedBefore++
		} else {
			res.AckedAfter++
		}
		if !there[name] {
			if before {
				res.LostBefore++
			} else {
				res.LostAfter++
			}
		}
	}
	if res.AckedBefore == 0 {
		return res, fmt.Errorf("no write through %s was acknowledged in the %s before the cut", server, preCut)
	}
	if readAfter < 0 || writeAfter < 0 {
		return res, fmt.Errorf("through %s after cutting %s off: first read %s, first write %s (none within %s)", server, node, readAfter, writeAfter, failoverWithin)
	}
	return res, nil
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}

// attempt is one request with its own timeout.
func attempt(ctx context.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return op(ctx)
}

// waitUntil retries op every 500 ms until it succeeds or d passes; the
// error is op's last.
func waitUntil(ctx context.Context, d time.Duration, op func() error) error {
	end := time.Now().Add(d)
	for {
		err := op()
		if err == nil {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("still failing after %s: %w", d, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// failoverProbeMain is `bench failover-probe`: measureFailover alone,
// its result as JSON on stdout. The bench runs it inside a node's network
// namespace (ip netns exec haadm-emei), where node-local's endpoint,
// 127.0.0.1:6444, is that node's own proxy.
func failoverProbeMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("failover-probe", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	server := fs.String("server", "", "the endpoint, https://HOST:PORT")
	node := fs.String("cut", "shaolin", "the node to cut off")
	id := fs.String("id", "", "names this failover's ConfigMaps")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *server == "" || *id == "" {
		return errors.New("needs -kubeconfig, -server and -id")
	}
	res, err := measureFailover(ctx, *kubeconfig, *server, *node, *id)
	out := struct {
		failoverResult
		Error string `json:"error,omitempty"`
	}{failoverResult: res}
	if err != nil {
		out.Error = err.Error()
	}
	return json.NewEncoder(stdout).Encode(out)
}
