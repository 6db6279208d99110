package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/bench/avail"
)

// probeEvery is the availability probe's interval per target and operation.
const probeEvery = 100 * time.Millisecond

// probeTarget is an apiserver or the endpoint the probe sends to.
type probeTarget struct {
	name, server string
}

// probeNamespace holds the probe's and the failover's ConfigMaps.
const probeNamespace = "default"

func probeConfigMap(target string) string { return "haadm-bench-probe-" + target }

// prober is the availability probe: every probeEvery, a read (GET the
// namespace kube-system) and a write (merge patch of the target's own
// ConfigMap) to each target, each request on its own goroutine so a slow
// one delays nothing. A target that is not there yet (a new master, the
// endpoint) fails until it answers; the analysis counts it from its
// first success.
type prober struct {
	t0      time.Time
	stop    chan struct{}
	ticking sync.WaitGroup // the tickers
	flying  sync.WaitGroup // the requests
	mu      sync.Mutex
	samples []avail.Sample
	end     time.Duration
}

// prepareProbe creates the ConfigMaps the probe patches, through the
// first master, before anything is timed.
func prepareProbe(ctx context.Context, kc kubernetes.Interface, targets []probeTarget) error {
	for _, t := range targets {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: probeConfigMap(t.name), Namespace: probeNamespace}}
		if _, err := kc.CoreV1().ConfigMaps(probeNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the probe's ConfigMap %s: %w", cm.Name, err)
		}
	}
	return nil
}

// startProbe starts probing at t0 (the promote's start).
func startProbe(kubeconfig string, targets []probeTarget, t0 time.Time) (*prober, error) {
	p := &prober{t0: t0, stop: make(chan struct{})}
	for _, t := range targets {
		kc, err := client(kubeconfig, t.server)
		if err != nil {
			return nil, fmt.Errorf("probe client for %s: %w", t.name, err)
		}
		p.ticking.Add(1)
		go p.tick(t, kc)
	}
	return p, nil
}

func (p *prober) tick(t probeTarget, kc kubernetes.Interface) {
	defer p.ticking.Done()
	tk := time.NewTicker(probeEvery)
	defer tk.Stop()
	for i := 0; ; i++ {
		p.flying.Add(2)
		go p.do(t.name, "read", func(ctx context.Context) error {
			_, err := kc.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
			return err
		})
		patch := []byte(`{"data":{"n":"` + strconv.Itoa(i) + `"}}`)
		go p.do(t.name, "write", func(ctx context.Context) error {
			_, err := kc.CoreV1().ConfigMaps(probeNamespace).Patch(ctx, probeConfigMap(t.name), types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		})
		select {
		case <-p.stop:
			return
		case <-tk.C:
		}
	}
}

func (p *prober) do(target, op string, req func(context.Context) error) {
	defer p.flying.Done()
	// Its own context: stopping the probe must not fail the requests
	// in flight, they are waited for.
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	start := time.Since(p.t0)
	err := req(ctx)
	s := avail.Sample{Target: target, Op: op, Start: start, End: time.Since(p.t0), OK: err == nil}
	if err != nil {
		s.Err = shorten(err.Error(), 160)
	}
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// finish stops the probe at end (the promote's end) and waits for the
// requests in flight.
func (p *prober) finish(end time.Time) ([]avail.Sample, time.Duration) {
	close(p.stop)
	p.ticking.Wait()
	p.flying.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples, end.Sub(p.t0)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
