package etcdm

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// QuorumSafe reports whether adding or promoting a member is safe now. It is
// when every voter has started and is healthy: promoting raises the quorum
// size, so with a voter already unhealthy one more failure (the new member
// not coming up right) could leave the cluster without quorum. When it is
// not safe, the reason names every voter at fault. The error is for not
// being able to ask at all.
//
// Each voter is asked at its first advertised client URL, which must be
// reachable from here with cli's TLS settings.
func QuorumSafe(ctx context.Context, cli *clientv3.Client) (bool, string, error) {
	members, err := List(ctx, cli)
	if err != nil {
		return false, "", err
	}
	var (
		problems  []string
		voters    []Member
		endpoints []string
	)
	for _, m := range members {
		switch {
		case m.IsLearner:
			continue
		case !m.Started():
			problems = append(problems, fmt.Sprintf("voter %s has never started", m))
		case len(m.ClientURLs) == 0:
			problems = append(problems, fmt.Sprintf("voter %s advertises no client URL", m))
		default:
			voters = append(voters, m)
			endpoints = append(endpoints, m.ClientURLs[0])
		}
	}
	leaders := map[uint64]bool{}
	for i, st := range EndpointStatuses(ctx, cli, endpoints) {
		v := voters[i]
		switch {
		case !st.Healthy:
			problems = append(problems, fmt.Sprintf("voter %s at %s is unhealthy: %s", v, st.Endpoint, st.Err))
		case st.MemberID != v.ID:
			// A client URL that leads to another member would make this
			// check vouch for the wrong etcd.
			problems = append(problems, fmt.Sprintf("voter %s: its client URL %s answers as member %x", v, st.Endpoint, st.MemberID))
		default:
			leaders[st.Leader] = true
		}
	}
	if len(leaders) > 1 {
		problems = append(problems, "voters disagree on the leader (an election is under way?)")
	}
	if len(problems) > 0 {
		return false, strings.Join(problems, "; "), nil
	}
	return true, "", nil
}
