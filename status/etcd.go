package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/haadm/haadm/etcdm"
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
	for _, pb := range resp.Members {
		m := etcdm.MemberOf(pb)
		out.Members = append(out.Members, EtcdMember{
			Name:       m.Name,
			ID:         m.HexID(),
			PeerURLs:   nonNil(m.PeerURLs),
			ClientURLs: nonNil(m.ClientURLs),
			Learner:    m.IsLearner,
			Started:    m.Started(),
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

// memberStatuses asks every started member for its status, all at once,
// with etcdm's health rules (answered, knows a leader, no alarm).
func memberStatuses(ctx context.Context, in *Inputs, cli *clientv3.Client, members []EtcdMember) {
	var endpoints []string
	var index []int
	for i, m := range members {
		if len(m.ClientURLs) > 0 { // not started: nothing to ask, and Started says so
			endpoints = append(endpoints, m.ClientURLs[0])
			index = append(index, i)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, in.timeout())
	defer cancel()
	var leaders []uint64
	for k, st := range etcdm.EndpointStatuses(ctx, cli, endpoints) {
		m := &members[index[k]]
		m.Version, m.RaftIndex, m.RaftTerm, m.DBSize = st.Version, st.RaftIndex, st.RaftTerm, st.DBSize
		m.Healthy, m.Error = st.Healthy, st.Err
		leaders = append(leaders, st.Leader)
	}
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
