package etcdm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusTimeout bounds one endpoint's status call. The client waits for a
// connection rather than failing fast, so a dead endpoint would otherwise
// hold the report until the caller's deadline.
const statusTimeout = 5 * time.Second

// EndpointStatus is what one etcd endpoint says about itself.
type EndpointStatus struct {
	Endpoint  string
	MemberID  uint64
	Leader    uint64
	RaftIndex uint64
	RaftTerm  uint64
	DBSize    int64
	Version   string
	IsLearner bool
	// Healthy means the endpoint answered, knows a leader, and reports no
	// errors (etcd lists active alarms such as NOSPACE there).
	Healthy bool
	Err     string
	Took    time.Duration
}

// EndpointStatuses asks every endpoint for its status, concurrently so that
// dead endpoints cost one timeout in total, and returns the results in the
// order of endpoints. It dials each endpoint directly with cli's settings.
func EndpointStatuses(ctx context.Context, cli *clientv3.Client, endpoints []string) []EndpointStatus {
	out := make([]EndpointStatus, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() { out[i] = endpointStatus(ctx, cli, ep) })
	}
	wg.Wait()
	return out
}

func endpointStatus(ctx context.Context, cli *clientv3.Client, ep string) EndpointStatus {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	start := time.Now()
	resp, err := cli.Status(ctx, ep)
	st := EndpointStatus{Endpoint: ep, Took: time.Since(start)}
	if err != nil {
		st.Err = describeStatusErr(err, st.Took)
		return st
	}
	if resp.Header != nil {
		st.MemberID = resp.Header.MemberId
	}
	st.Leader = resp.Leader
	st.RaftIndex = resp.RaftIndex
	st.RaftTerm = resp.RaftTerm
	st.DBSize = resp.DbSize
	st.Version = resp.Version
	st.IsLearner = resp.IsLearner
	switch {
	case len(resp.Errors) > 0:
		st.Err = strings.Join(resp.Errors, "; ")
	case resp.Leader == 0:
		st.Err = "no leader"
	default:
		st.Healthy = true
	}
	return st
}

// describeStatusErr replaces a bare "context deadline exceeded", which is
// what a refused connection turns into while the client waits for it.
func describeStatusErr(err error, took time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer after %s (etcd down or unreachable): %v", took.Round(time.Millisecond), err)
	}
	return err.Error()
}
