package etcdm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestFromPBSortsByID(t *testing.T) {
	ms := fromPB([]*etcdserverpb.Member{
		{ID: 30, Name: "c", PeerURLs: []string{"https://10.0.0.3:2380"}},
		{ID: 10, Name: "a", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 20, PeerURLs: []string{"https://10.0.0.2:2380"}, IsLearner: true},
	})
	if ms[0].ID != 10 || ms[1].ID != 20 || ms[2].ID != 30 {
		t.Fatalf("order = %v", ms)
	}
	if ms[1].Started() || !ms[0].Started() {
		t.Fatalf("Started: unnamed member must be unstarted, named one started: %v", ms)
	}
}

func TestInitialClusterPutsNewMemberLast(t *testing.T) {
	members := []Member{
		{ID: 1, Name: "a", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}, IsLearner: true}, // the new one
		{ID: 3, Name: "c", PeerURLs: []string{"https://10.0.0.3:2380"}},
	}
	got := initialCluster(members, members[1], "b")
	want := "a=https://10.0.0.1:2380,c=https://10.0.0.3:2380,b=https://10.0.0.2:2380"
	if got != want {
		t.Fatalf("initialCluster = %q, want %q", got, want)
	}
}

func TestStale(t *testing.T) {
	members := []Member{
		{ID: 1, Name: "a", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 2, PeerURLs: []string{"https://10.0.0.2:2380"}, IsLearner: true},
		{ID: 3, Name: "old", PeerURLs: []string{"https://10.0.0.9:2380"}},
	}
	got := Stale(members, []string{"https://10.0.0.1:2380/", "https://10.0.0.2:2380"})
	if len(got) != 2 || got[0].ID != 2 || got[1].ID != 3 {
		t.Fatalf("Stale = %v, want the unstarted member 2 and the unknown member 3", got)
	}
}

func TestStaleMembersErrorHint(t *testing.T) {
	learner := Member{ID: 0xabc, PeerURLs: []string{"https://10.0.0.2:2380"}, IsLearner: true}
	voter := Member{ID: 0xdef, PeerURLs: []string{"https://10.0.0.3:2380"}}
	msg := (&StaleMembersError{Members: []Member{learner}}).Error()
	for _, want := range []string{"learner abc", "https://10.0.0.2:2380", "`etcdctl member remove abc`", "--remove-stale-learners"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	// haadm never removes a voter by itself, so it must not offer to.
	msg = (&StaleMembersError{Members: []Member{learner, voter}}).Error()
	if !strings.Contains(msg, "`etcdctl member remove def`") || strings.Contains(msg, "--remove-stale-learners") {
		t.Errorf("with a stale voter: %q", msg)
	}
}

func TestValidate(t *testing.T) {
	for _, u := range []string{"https://10.0.0.1:2380", "http://[fd00::1]:2380"} {
		if err := validatePeerURL(u); err != nil {
			t.Errorf("validatePeerURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"10.0.0.1:2380", "https://10.0.0.1", "https://10.0.0.1:2380/x", "unix:///x", "https://10.0.0.1:2380/"} {
		if err := validatePeerURL(u); err == nil {
			t.Errorf("validatePeerURL(%q) accepted", u)
		}
	}
	for _, n := range []string{"", "a,b", "a=b", "a b"} {
		if err := validateName(n); err == nil {
			t.Errorf("validateName(%q) accepted", n)
		}
	}
}

func TestLearnerNotReady(t *testing.T) {
	if !learnerNotReady(rpctypes.ErrMemberLearnerNotReady) {
		t.Error("rpctypes error not recognised")
	}
	if !learnerNotReady(errors.New("etcdserver: can only promote a learner member which is in sync with leader")) {
		t.Error("plain message not recognised")
	}
	if learnerNotReady(rpctypes.ErrMemberNotLearner) {
		t.Error("ErrMemberNotLearner, whose message is a prefix, taken for not ready")
	}
}

func TestSyncLine(t *testing.T) {
	learner := Member{ID: 2, Name: "emei", IsLearner: true}
	members := []Member{{ID: 1, Name: "lead"}, learner}
	statusOf := func(_ context.Context, m Member) (*clientv3.StatusResponse, error) {
		if m.ID == 2 {
			return &clientv3.StatusResponse{Leader: 1, RaftIndex: 40}, nil
		}
		return &clientv3.StatusResponse{Leader: 1, RaftIndex: 50}, nil
	}
	if got, want := syncLine(t.Context(), statusOf, learner, members), "learner emei at raft index 40 of 50, waiting"; got != want {
		t.Errorf("syncLine = %q, want %q", got, want)
	}
	if got := syncLine(t.Context(), nil, learner, members); !strings.Contains(got, "not in sync") {
		t.Errorf("syncLine without StatusOf = %q", got)
	}
}

func TestDedupe(t *testing.T) {
	var got []string
	report := dedupe(func(s string) { got = append(got, s) })
	for _, s := range []string{"a", "a", "b", "a"} {
		report(s)
	}
	if strings.Join(got, "") != "aba" {
		t.Fatalf("got %q", got)
	}
	dedupe(nil)("no callback must not panic")
}

func TestTrailerCheck(t *testing.T) {
	db := bytes.Repeat([]byte{7}, 4096)
	sum := sha256.Sum256(db)
	stream := append(append([]byte{}, db...), sum[:]...)
	check := func(b []byte) error {
		tc := &trailerCheck{db: sha256.New()}
		// Odd-sized chunks, so the trailer straddles writes.
		n, err := io.CopyBuffer(tc, bytes.NewReader(b), make([]byte, 1000))
		if err != nil {
			t.Fatal(err)
		}
		return tc.verify(n)
	}
	if err := check(stream); err != nil {
		t.Fatalf("good stream: %v", err)
	}
	if err := check(stream[:len(stream)-100]); err == nil {
		t.Fatal("truncated stream accepted")
	}
	bad := append([]byte{}, stream...)
	bad[10] ^= 1
	if err := check(bad); err == nil {
		t.Fatal("corrupted stream accepted")
	}
}

// TestConfirmVoterRetriesAHungStatus: the first status hangs (as the first
// one asked of a just-promoted member did in the lab); the confirmation
// comes from the next attempt, not after the whole RPC timeout.
func TestConfirmVoterRetriesAHungStatus(t *testing.T) {
	t.Parallel()
	var calls int
	var lines []string
	start := time.Now()
	confirmVoter(context.Background(), Member{ID: 7, Name: "wudang"}, confirmTimeout, PromoteOptions{
		Interval: 200 * time.Millisecond,
		StatusOf: func(ctx context.Context, m Member) (*clientv3.StatusResponse, error) {
			calls++
			if calls == 1 {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return &clientv3.StatusResponse{}, nil
		},
	}, func(s string) { lines = append(lines, s) })
	if calls != 2 || len(lines) != 1 || !strings.Contains(lines[0], "context deadline exceeded") {
		t.Errorf("%d status calls, reports %q; want 2 calls and the first one's error", calls, lines)
	}
	if took := time.Since(start); took >= rpcTimeout {
		t.Errorf("confirmed after %v: the hung attempt was given the whole RPC timeout", took)
	}
	if got := confirmAttempt(time.Second); got != 2*time.Second {
		t.Errorf("confirmAttempt(1s) = %v", got)
	}
	if got := confirmAttempt(10 * time.Millisecond); got != time.Second {
		t.Errorf("confirmAttempt(10ms) = %v", got)
	}
}
