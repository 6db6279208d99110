package etcdm

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rpcTimeout bounds one etcd call inside a retry loop, so that a call stuck
// on a dead endpoint cannot use up the whole wait and leave no retries.
const rpcTimeout = 5 * time.Second

// Member is one etcd cluster member, decoupled from etcd's protobuf types so
// callers need not import them.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Started reports whether the member has ever contacted the cluster. etcd
// has no such field: a member that was added but never started has neither
// a name nor client URLs, since it publishes both when it first runs. This
// is the one rule haadm's promote and status both use.
func (m Member) Started() bool { return m.Name != "" || len(m.ClientURLs) > 0 }

// HexID is the member ID as etcdctl prints and accepts it.
func (m Member) HexID() string { return strconv.FormatUint(m.ID, 16) }

// String names the member for humans: by name once it has one, by ID and
// peer URL otherwise, since an unstarted member has nothing else.
func (m Member) String() string {
	peers := strings.Join(m.PeerURLs, ",")
	if !m.Started() {
		return fmt.Sprintf("unstarted member %s (%s)", m.HexID(), peers)
	}
	return fmt.Sprintf("%s (%s, %s)", m.Name, m.HexID(), peers)
}

// hasPeerURL compares after dropping a trailing slash: etcd stores peer URLs
// as given, and a user-typed URL may carry one.
func (m Member) hasPeerURL(peerURL string) bool {
	want := strings.TrimSuffix(peerURL, "/")
	for _, u := range m.PeerURLs {
		if strings.TrimSuffix(u, "/") == want {
			return true
		}
	}
	return false
}

// List returns the members in ID order, so that output and the
// --initial-cluster value are stable from one run to the next.
func List(ctx context.Context, cli *clientv3.Client) ([]Member, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing etcd members: %w", err)
	}
	return fromPB(resp.Members), nil
}

// listOnce is List bounded by rpcTimeout, for use inside retry loops.
func listOnce(ctx context.Context, cli *clientv3.Client) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	return List(ctx, cli)
}

// MemberOf converts one member of a MemberList response, for callers that
// list members their own way (status lists serializably) and still judge
// them by Member's rules.
func MemberOf(p *etcdserverpb.Member) Member {
	return Member{
		ID:         p.ID,
		Name:       p.Name,
		PeerURLs:   slices.Clone(p.PeerURLs),
		ClientURLs: slices.Clone(p.ClientURLs),
		IsLearner:  p.IsLearner,
	}
}

func fromPB(pbs []*etcdserverpb.Member) []Member {
	out := make([]Member, 0, len(pbs))
	for _, p := range pbs {
		out = append(out, MemberOf(p))
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// FindByPeerURL is the member with peerURL, the one way haadm ties a member
// to its node (kubeadm names members after their node, but an unstarted
// member has no name yet).
func FindByPeerURL(members []Member, peerURL string) (Member, bool) {
	for _, m := range members {
		if m.hasPeerURL(peerURL) {
			return m, true
		}
	}
	return Member{}, false
}
