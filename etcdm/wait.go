package etcdm

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// defaultInterval is how often membership is polled while waiting: the
// same pace as kubeadm's etcd API retries, cheap for etcd.
const defaultInterval = 500 * time.Millisecond

// poll runs step at once and then every interval until it reports done or
// ctx ends; in the latter case it returns ctx's error.
func poll(ctx context.Context, interval time.Duration, step func(ctx context.Context) (done bool, err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := step(ctx)
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// WaitStarted waits until the member with peerURL has a name, that is until
// its etcd has started and contacted the cluster. A member that does not
// exist is an error at once: waiting for it could never succeed.
func WaitStarted(ctx context.Context, cli *clientv3.Client, peerURL string, timeout time.Duration) (Member, error) {
	return waitStarted(ctx, cli, peerURL, timeout, defaultInterval, func(string) {})
}

func waitStarted(parent context.Context, cli *clientv3.Client, peerURL string, timeout, interval time.Duration, progress func(string)) (Member, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var (
		m       Member
		seen    bool
		lastErr error
	)
	start := time.Now()
	err := poll(ctx, interval, func(ctx context.Context) (bool, error) {
		members, err := listOnce(ctx, cli)
		if err != nil {
			// etcd may be electing a leader: try again. A call cut short by
			// the wait's own deadline says nothing about etcd.
			if ctx.Err() == nil {
				lastErr = err
			}
			return false, nil
		}
		lastErr = nil
		found, ok := FindByPeerURL(members, peerURL)
		if !ok {
			return false, &MemberNotFoundError{PeerURL: peerURL}
		}
		m, seen = found, true
		if !m.Started() {
			progress(fmt.Sprintf("learner %s has not started yet, waiting", peerURL))
			return false, nil
		}
		return true, nil
	})
	switch {
	case err == nil:
		return m, nil
	case ctx.Err() == nil:
		return m, err
	case parent.Err() != nil:
		return m, fmt.Errorf("waiting for etcd member %s to start: %w", peerURL, parent.Err())
	case lastErr != nil:
		return m, fmt.Errorf("etcd member %s did not start within %s; last error: %w", peerURL, timeout, lastErr)
	case seen:
		return m, &NotStartedError{Member: m, Waited: time.Since(start)}
	}
	return m, fmt.Errorf("waiting for etcd member %s to start: %w", peerURL, err)
}
