package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// collectEtcd lists the members and asks each for its own status, all
// members at once so that a dead one costs one timeout, not one each.
func collectEtcd(ctx context.Context, in *Inputs) Etcd {
	out := Etcd{Members: []EtcdMember{}}
	if in.Etcd == nil {
		out.Error = "no etcd access"
		return out
	}
	// The client lives as long as this context: the factory may tie its
	// tunnels to it. Connecting, listing and the status round each get one
	// probe timeout.
	ctx, cancel := context.WithTimeout(ctx, 3*in.timeout())
	defer cancel()
	cli, err := connectEtcd(ctx, in)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer cli.Close()

	listCtx, cancelList := context.WithTimeout(ctx, in.timeout())
	// Serializable: the member a client reaches answers from its own copy,
	// so the list is there even when quorum is lost, which is exactly
	// when status matters.
	resp, err := cli.MemberList(listCtx, clientv3.WithSerializable())
	cancelList()
	if err != nil {
		out.Error = fmt.Sprintf("list members: %v", err)
		return out
	}
	for _, m := range resp.Members {
		out.Members = append(out.Members, EtcdMember{
			Name:       m.Name,
			ID:         fmt.Sprintf("%x", m.ID),
			PeerURLs:   nonNil(m.PeerURLs),
			ClientURLs: nonNil(m.ClientURLs),
			Learner:    m.IsLearner,
			// An added member has neither name nor client URLs until its
			// etcd starts and publishes them.
			Started: m.Name != "" || len(m.ClientURLs) > 0,
		})
	}
	memberStatuses(ctx, in, cli, out.Members)
	sort.SliceStable(out.Members, func(i, j int) bool { return memberKey(out.Members[i]) < memberKey(out.Members[j]) })
	return out
}

// connectEtcd calls the factory, bounded by the probe timeout even if the
// factory ignores its context.
func connectEtcd(ctx context.Context, in *Inputs) (*clientv3.Client, error) {
	type result struct {
		cli *clientv3.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cli, err := in.Etcd(ctx)
		done <- result{cli, err}
	}()
	timer := time.NewTimer(in.timeout())
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err == nil && r.cli == nil {
			r.err = errors.New("no client")
		}
		if r.err != nil {
			return nil, fmt.Errorf("connect: %w", r.err)
		}
		return r.cli, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	go func() {
		if r := <-done; r.cli != nil {
			r.cli.Close()
		}
	}()
	return nil, fmt.Errorf("connect: no client within %v", in.timeout())
}

func memberStatuses(ctx context.Context, in *Inputs, cli *clientv3.Client, members []EtcdMember) {
	leaders := make([]uint64, len(members))
	var wg sync.WaitGroup
	for i := range members {
		m := &members[i]
		if len(m.ClientURLs) == 0 {
			continue // not started: nothing to ask, and Started says so
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, in.timeout())
			defer cancel()
			st, err := cli.Status(ctx, m.ClientURLs[0])
			if err != nil {
				m.Error = err.Error()
				return
			}
			m.Version = st.Version
			m.RaftIndex = st.RaftIndex
			m.RaftTerm = st.RaftTerm
			m.DBSize = st.DbSize
			leaders[i] = st.Leader
			switch {
			case len(st.Errors) > 0:
				m.Error = strings.Join(st.Errors, "; ")
			case st.Leader == 0:
				m.Error = "no leader"
			default:
				m.Healthy = true
			}
		})
	}
	wg.Wait()
	for i := range members {
		for _, l := range leaders {
			if l != 0 && fmt.Sprintf("%x", l) == members[i].ID {
				members[i].Leader = true
			}
		}
	}
}

// memberKey sorts named members by name and unstarted ones last.
func memberKey(m EtcdMember) string {
	if m.Name == "" {
		return "\xff" + m.ID
	}
	return m.Name
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}
