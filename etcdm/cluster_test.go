package etcdm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestGrowCluster grows a real etcd from one member to three the way haadm
// does it (EnsureLearner, start etcd with the returned --initial-cluster,
// Promote), checking the failure and re-run paths on the way. Steps share
// the cluster, so a failed step ends the test.
func TestGrowCluster(t *testing.T) {
	m1, m2, m3 := newTestNode(t, "m1"), newTestNode(t, "m2"), newTestNode(t, "m3")
	m1.start(t, "m1="+m1.peerURL, "new")
	m1.waitReady(t)
	// The client talks to m1 only, as haadm talks to the original master.
	cli := newClient(t, m1.clientURL)
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	ghost := freeURL(t) // a node that never comes up
	step("unstarted learner: Promote and WaitStarted time out", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		g, ic, err := EnsureLearner(ctx, cli, "ghost", ghost)
		if err != nil {
			t.Fatal(err)
		}
		if g.Started() || !g.IsLearner {
			t.Fatalf("ghost = %+v, want an unstarted learner", g)
		}
		if want := "m1=" + m1.peerURL + ",ghost=" + ghost; ic != want {
			t.Fatalf("initial cluster = %q, want %q", ic, want)
		}
		start := time.Now()
		err = Promote(ctx, cli, ghost, PromoteOptions{Timeout: time.Second, Interval: 100 * time.Millisecond})
		var nse *NotStartedError
		if !errors.As(err, &nse) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Promote of a never-started learner: %v, want a NotStartedError", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("Promote took %s with a 1s timeout", el)
		}
		for _, want := range []string{g.HexID(), ghost, "has not started", "etcdctl member remove " + g.HexID()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if _, err := WaitStarted(ctx, cli, ghost, 300*time.Millisecond); !errors.As(err, &nse) {
			t.Fatalf("WaitStarted: %v, want a NotStartedError", err)
		}
		err = Promote(ctx, cli, freeURL(t), PromoteOptions{Timeout: 5 * time.Second})
		var nf *MemberNotFoundError
		if !errors.As(err, &nf) {
			t.Fatalf("Promote of an unknown peer URL: %v, want a MemberNotFoundError at once", err)
		}
	})

	step("stale learner blocks the next join, then is removed", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		before := mustList(ctx, t, cli)
		_, _, err := EnsureLearner(ctx, cli, "m2", m2.peerURL)
		var se *StaleMembersError
		if !errors.As(err, &se) || len(se.Members) != 1 || !se.Members[0].hasPeerURL(ghost) {
			t.Fatalf("EnsureLearner with a stale learner: %v, want a StaleMembersError naming %s", err, ghost)
		}
		id := se.Members[0].HexID()
		for _, want := range []string{id, ghost, "etcdctl member remove " + id, "--remove-stale-learners"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if after := mustList(ctx, t, cli); len(after) != len(before) {
			t.Fatalf("a refused EnsureLearner changed membership: %d -> %d members", len(before), len(after))
		}
		if got := Stale(before, []string{m1.peerURL, ghost}); len(got) != 1 || !got[0].hasPeerURL(ghost) {
			t.Fatalf("Stale = %v, want the unstarted ghost", got)
		}
		removed, err := RemoveUnstartedLearner(ctx, cli, ghost)
		if err != nil || !removed {
			t.Fatalf("RemoveUnstartedLearner(ghost) = %v, %v; want true, nil", removed, err)
		}
		removed, err = RemoveUnstartedLearner(ctx, cli, ghost)
		if err != nil || removed {
			t.Fatalf("second RemoveUnstartedLearner(ghost) = %v, %v; want false, nil", removed, err)
		}
		if n := len(mustList(ctx, t, cli)); n != 1 {
			t.Fatalf("%d members after removing the ghost, want 1", n)
		}
	})

	step("join m2", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		a, icA, err := EnsureLearner(ctx, cli, "m2", m2.peerURL)
		if err != nil {
			t.Fatal(err)
		}
		b, icB, err := EnsureLearner(ctx, cli, "m2", m2.peerURL)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || icA != icB {
			t.Fatalf("EnsureLearner twice: %v %q then %v %q", a, icA, b, icB)
		}
		if n := len(mustList(ctx, t, cli)); n != 2 {
			t.Fatalf("%d members after EnsureLearner twice, want 2", n)
		}
		if want := "m1=" + m1.peerURL + ",m2=" + m2.peerURL; icA != want {
			t.Fatalf("initial cluster = %q, want %q", icA, want)
		}
		m2.start(t, icA, "existing")
		started, err := WaitStarted(ctx, cli, m2.peerURL, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if started.Name != "m2" || !started.IsLearner || len(started.ClientURLs) == 0 {
			t.Fatalf("started m2 = %+v", started)
		}
		if _, err := RemoveUnstartedLearner(ctx, cli, m2.peerURL); err == nil || !strings.Contains(err.Error(), "started") {
			t.Fatalf("RemoveUnstartedLearner of a started learner: %v, want a refusal", err)
		}
		// etcd allows one learner at a time: the next join must wait for
		// this promotion, and the error must say so.
		if _, _, err := EnsureLearner(ctx, cli, "m3", m3.peerURL); err == nil || !strings.Contains(err.Error(), "m2") {
			t.Fatalf("EnsureLearner(m3) while m2 is a learner: %v, want an error naming m2", err)
		}
		lines := promote(ctx, t, cli, m2.peerURL)
		if !contains(lines, "learner m2 started") || !contains(lines, "learner m2 promoted to voter") {
			t.Fatalf("progress lines %q lack start and promotion", lines)
		}
		// A re-run finds a voter and succeeds without promoting again.
		if lines := promote(ctx, t, cli, m2.peerURL); !contains(lines, "member m2 is already a voter") {
			t.Fatalf("second Promote progress %q, want already a voter", lines)
		}
		if _, err := RemoveUnstartedLearner(ctx, cli, m2.peerURL); err == nil || !strings.Contains(err.Error(), "voter") {
			t.Fatalf("RemoveUnstartedLearner of a voter: %v, want a refusal", err)
		}
	})

	step("join m3", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		var want []string
		for _, m := range mustList(ctx, t, cli) {
			want = append(want, m.Name+"="+m.PeerURLs[0])
		}
		want = append(want, "m3="+m3.peerURL)
		_, ic, err := EnsureLearner(ctx, cli, "m3", m3.peerURL)
		if err != nil {
			t.Fatal(err)
		}
		if ic != strings.Join(want, ",") {
			t.Fatalf("initial cluster = %q, want %q", ic, strings.Join(want, ","))
		}
		m3.start(t, ic, "existing")
		// The last member, as haadm promotes it: etcd's word alone.
		lines := promoteWith(ctx, t, cli, m3.peerURL, true)
		if !contains(lines, "member m3 is a voter; not waiting for it to serve clients") || slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "applied its promotion") }) {
			t.Errorf("unconfirmed promotion of m3 reported %q", lines)
		}
		if m, ok := FindByPeerURL(mustList(ctx, t, cli), m3.peerURL); !ok || m.IsLearner {
			t.Fatalf("after an unconfirmed promotion etcd lists m3 as %+v", m)
		}
		// Unconfirmed leaves the wait to the caller (the apiserver that
		// starts next, in haadm): m3 may refuse clients as a learner for a
		// moment after the leader has applied its promotion.
		waitSelfVoter(ctx, t, m3)
	})

	all := []*testNode{m1, m2, m3}
	step("three started voters serve reads and writes", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		members := mustList(ctx, t, cli)
		if len(members) != 3 {
			t.Fatalf("%d members, want 3: %v", len(members), members)
		}
		for _, m := range members {
			if !m.Started() || m.IsLearner {
				t.Errorf("member %v: want a started voter", m)
			}
		}
		for _, n := range all {
			n.waitReady(t)
		}
		put := newClient(t, m3.clientURL)
		if _, err := put.Put(ctx, "haadm/test", "grown"); err != nil {
			t.Fatal(err)
		}
		// A linearizable read through another member sees the write.
		resp, err := newClient(t, m2.clientURL).Get(ctx, "haadm/test")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "grown" {
			t.Fatalf("Get = %v, want grown", resp.Kvs)
		}
		if got := Stale(members, []string{m1.peerURL, m2.peerURL}); len(got) != 1 || got[0].Name != "m3" {
			t.Fatalf("Stale with m3 unknown = %v, want m3", got)
		}
		if got := Stale(members, []string{m1.peerURL, m2.peerURL, m3.peerURL}); len(got) != 0 {
			t.Fatalf("Stale with all known = %v, want none", got)
		}
		// Re-running a join for a member already in place changes nothing and
		// still yields its --initial-cluster; a conflicting name is refused.
		if _, ic, err := EnsureLearner(ctx, cli, "m3", m3.peerURL); err != nil || !strings.HasSuffix(ic, ",m3="+m3.peerURL) {
			t.Fatalf("EnsureLearner for the voter m3 = %q, %v", ic, err)
		}
		if _, _, err := EnsureLearner(ctx, cli, "m1", freeURL(t)); err == nil || !strings.Contains(err.Error(), `already uses the name "m1"`) {
			t.Fatalf("EnsureLearner with m1's name on another URL: %v, want a refusal", err)
		}
		if _, _, err := EnsureLearner(ctx, cli, "renamed", m2.peerURL); err == nil || !strings.Contains(err.Error(), `under the name "m2"`) {
			t.Fatalf("EnsureLearner renaming m2: %v, want a refusal", err)
		}
		if n := len(mustList(ctx, t, cli)); n != 3 {
			t.Fatalf("%d members after refused joins, want 3", n)
		}
	})

	step("endpoint statuses", func(t *testing.T) {
		ctx := testCtx(t, 2*time.Second)
		dead := freeURL(t)
		sts := EndpointStatuses(ctx, cli, []string{m1.clientURL, m2.clientURL, m3.clientURL, dead})
		if len(sts) != 4 {
			t.Fatalf("%d statuses, want 4", len(sts))
		}
		leader := sts[0].Leader
		for i, st := range sts[:3] {
			if !st.Healthy || st.Err != "" || st.Leader == 0 || st.Leader != leader ||
				st.RaftIndex == 0 || st.RaftTerm == 0 || st.DBSize == 0 || st.MemberID == 0 || st.IsLearner {
				t.Errorf("status of %s: %+v", all[i].name, st)
			}
		}
		if d := sts[3]; d.Healthy || d.Err == "" || d.Endpoint != dead {
			t.Errorf("status of a dead endpoint: %+v, want unhealthy with an error", d)
		}
	})

	step("snapshot", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		var buf bytes.Buffer
		info, err := Snapshot(ctx, cli, &buf)
		if err != nil {
			t.Fatal(err)
		}
		raw := sha256.Sum256(buf.Bytes())
		if info.Size <= 0 || info.Size != int64(buf.Len()) || info.SHA256 != hex.EncodeToString(raw[:]) {
			t.Fatalf("Snapshot = %+v; wrote %d bytes, sha %x", info, buf.Len(), raw)
		}
		assertSnapshotReadable(t, buf.Bytes())
	})

	step("quorum safety", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if ok, reason, err := QuorumSafe(ctx, cli); err != nil || !ok {
			t.Fatalf("QuorumSafe with three healthy voters = %v, %q, %v", ok, reason, err)
		}
		m3.stop()
		ctx = testCtx(t, 3*time.Second)
		ok, reason, err := QuorumSafe(ctx, cli)
		if err != nil {
			t.Fatalf("QuorumSafe with 2 of 3 voters up: %v (quorum holds, so it must answer)", err)
		}
		if ok || !strings.Contains(reason, "m3") || !strings.Contains(reason, "unhealthy") {
			t.Fatalf("QuorumSafe with m3 stopped = %v, %q; want false naming m3", ok, reason)
		}
	})
}

// assertSnapshotReadable does what `etcdutl snapshot status` does: it opens
// the file as a bolt database and counts the keys, after checking etcd's
// sha256 trailer.
func assertSnapshotReadable(t *testing.T, snap []byte) {
	t.Helper()
	db, trailer := snap[:len(snap)-sha256.Size], snap[len(snap)-sha256.Size:]
	if sum := sha256.Sum256(db); !bytes.Equal(sum[:], trailer) {
		t.Fatal("snapshot trailer is not the sha256 of the database")
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, snap, 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("snapshot is not a bolt database: %v", err)
	}
	defer bdb.Close()
	keys := 0
	err = bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return errors.New("no key bucket")
		}
		keys = b.Stats().KeyN
		return nil
	})
	if err != nil || keys == 0 {
		t.Fatalf("snapshot key bucket: %d keys, %v", keys, err)
	}
}

func mustList(ctx context.Context, t *testing.T, cli *clientv3.Client) []Member {
	t.Helper()
	ms, err := List(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// promote runs Promote as haadm does and returns its progress lines.
func promote(ctx context.Context, t *testing.T, cli *clientv3.Client, peerURL string) []string {
	t.Helper()
	return promoteWith(ctx, t, cli, peerURL, false)
}

func promoteWith(ctx context.Context, t *testing.T, cli *clientv3.Client, peerURL string, unconfirmed bool) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		lines []string
	)
	err := Promote(ctx, cli, peerURL, PromoteOptions{
		Timeout:     20 * time.Second,
		Interval:    200 * time.Millisecond,
		StatusOf:    StatusViaClient(cli),
		Unconfirmed: unconfirmed,
		Progress: func(s string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, s)
		},
	})
	if err != nil {
		t.Fatalf("Promote(%s): %v (progress: %q)", peerURL, err, lines)
	}
	t.Logf("Promote(%s): %s", peerURL, strings.Join(lines, " | "))
	return lines
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// waitSelfVoter waits until n itself reports that it is no longer a learner.
func waitSelfVoter(ctx context.Context, t *testing.T, n *testNode) {
	t.Helper()
	c := newClient(t, n.clientURL)
	var last error
	err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		st, err := c.Status(sctx, n.clientURL)
		last = err
		return err == nil && !st.IsLearner, nil
	})
	if err != nil {
		t.Fatalf("member %s still a learner or unreachable (%v): %v", n.name, last, err)
	}
}
