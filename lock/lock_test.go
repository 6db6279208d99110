package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	coordv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// store is the API server's side of the one Lease, as strict as the real
// one: the fake clientset's tracker neither sets nor checks
// resourceVersion, so an update or delete from a stale read would pass
// there and the takeover race would go untested.
type store struct {
	mu    sync.Mutex
	rv    int
	lease *coordinationv1.Lease
	// down makes every call fail, like an apiserver being restarted.
	down bool
	// gets, while > 0, holds that many Gets until all of them have read:
	// two takers then act on the same resourceVersion.
	gets int
	gate chan struct{}
}

var leasesGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func newKube(t *testing.T) (*fake.Clientset, *store) {
	t.Helper()
	cs := fake.NewClientset()
	s := &store{}
	cs.PrependReactor("*", "leases", s.react)
	return cs, s
}

func (s *store) react(a k8stesting.Action) (bool, runtime.Object, error) {
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return true, nil, errors.New("dial tcp 10.250.0.11:6443: connect: connection refused")
	}
	defer s.mu.Unlock()
	obj, err := s.do(a)
	return true, obj, err
}

// afterGet holds the caller of a Get while s.gets says so. It runs
// outside the fake's reactor chain, which holds the fake's own lock.
func (s *store) afterGet() {
	s.mu.Lock()
	var gate chan struct{}
	if s.gets > 0 {
		s.gets--
		if s.gets == 0 {
			close(s.gate)
		}
		gate = s.gate
	}
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

// gatedKube is the fake clientset whose Lease Gets go through
// store.afterGet.
type gatedKube struct {
	*fake.Clientset
	s *store
}

func (k gatedKube) CoordinationV1() coordv1client.CoordinationV1Interface {
	return gatedCoord{k.Clientset.CoordinationV1(), k.s}
}

type gatedCoord struct {
	coordv1client.CoordinationV1Interface
	s *store
}

func (c gatedCoord) Leases(ns string) coordv1client.LeaseInterface {
	return gatedLeases{c.CoordinationV1Interface.Leases(ns), c.s}
}

type gatedLeases struct {
	coordv1client.LeaseInterface
	s *store
}

func (l gatedLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	lease, err := l.LeaseInterface.Get(ctx, name, o)
	l.s.afterGet()
	return lease, err
}

// do serves one call; s.mu is held.
func (s *store) do(a k8stesting.Action) (runtime.Object, error) {
	switch a.GetVerb() {
	case "get":
		name := a.(k8stesting.GetAction).GetName()
		if s.lease == nil || s.lease.Name != name {
			return nil, apierrors.NewNotFound(leasesGR, name)
		}
		return s.lease.DeepCopy(), nil
	case "create":
		l := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		if s.lease != nil {
			return nil, apierrors.NewAlreadyExists(leasesGR, l.Name)
		}
		s.rv++
		l.ResourceVersion, l.UID = strconv.Itoa(s.rv), types.UID(fmt.Sprintf("uid-%d", s.rv))
		s.lease = l
		return l.DeepCopy(), nil
	case "update":
		l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		if s.lease == nil {
			return nil, apierrors.NewNotFound(leasesGR, l.Name)
		}
		if l.ResourceVersion != s.lease.ResourceVersion {
			return nil, apierrors.NewConflict(leasesGR, l.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		s.rv++
		l.ResourceVersion, l.UID = strconv.Itoa(s.rv), s.lease.UID
		s.lease = l
		return l.DeepCopy(), nil
	case "delete":
		d := a.(k8stesting.DeleteAction)
		if s.lease == nil {
			return nil, apierrors.NewNotFound(leasesGR, d.GetName())
		}
		if p := d.GetDeleteOptions().Preconditions; p != nil {
			if p.ResourceVersion != nil && *p.ResourceVersion != s.lease.ResourceVersion || p.UID != nil && *p.UID != s.lease.UID {
				return nil, apierrors.NewConflict(leasesGR, d.GetName(), errors.New("precondition failed"))
			}
		}
		s.lease = nil
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %s", a.GetVerb())
}

func (s *store) get() *coordinationv1.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return nil
	}
	return s.lease.DeepCopy()
}

// seed puts a lease of h, last renewed at renewed, into the store.
func (s *store) seed(h Holder, renewed time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv++
	l := newLease(h, renewed, DefaultDuration)
	l.ResourceVersion, l.UID = strconv.Itoa(s.rv), types.UID(fmt.Sprintf("uid-%d", s.rv))
	s.lease = l
}

func holder(host string, pid int) Holder {
	return Holder{Command: "promote", User: "root", Host: host, PID: pid, Started: t0.Add(-5 * time.Minute), Boot: "b1", PIDNS: "pid:[1]"}
}

// notes collects Options.Note.
type notes struct {
	mu  sync.Mutex
	all []string
}

func (n *notes) add(m string) { n.mu.Lock(); defer n.mu.Unlock(); n.all = append(n.all, m) }
func (n *notes) has(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.all {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

func opts(n *notes, dead ...int) Options {
	return Options{
		Now:   func() time.Time { return t0 },
		Alive: func(pid int) bool { return !containsInt(dead, pid) },
		Note:  n.add,
	}
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestAcquireRelease(t *testing.T) {
	kube, s := newKube(t)
	ctx := context.Background()
	me := holder("shaolin", 100)
	l, err := Acquire(ctx, kube, me, opts(&notes{}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := Peek(ctx, kube)
	if err != nil || info == nil {
		t.Fatalf("Peek: %v %v", info, err)
	}
	if info.Holder != me {
		t.Errorf("holder %+v, want %+v", info.Holder, me)
	}
	if d := s.get().Spec.LeaseDurationSeconds; d == nil || *d != 60 {
		t.Errorf("leaseDurationSeconds %v", d)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if s.get() != nil {
		t.Error("lease still there after Release")
	}
	if info, err := Peek(ctx, kube); info != nil || err != nil {
		t.Errorf("Peek after release: %v %v", info, err)
	}
}

func TestHeldByAnother(t *testing.T) {
	kube, s := newKube(t)
	ctx := context.Background()
	s.seed(holder("shaolin", 100), t0.Add(-20*time.Second))
	for _, tc := range []struct {
		name string
		me   Holder
		dead []int
		want []string
	}{
		{"other host", holder("emei", 200), nil,
			[]string{"locked by `haadm promote` by root@shaolin (pid 100)", "running since 2026-11-22T02:55:00Z (5m0s ago)", "last renewed 20s ago", "wait for it"}},
		{"same host, holder runs", holder("shaolin", 200), nil, []string{"pid 100", "wait for it"}},
		// Not this PID namespace: a dead-looking holder's lock is left
		// to expire, or broken now with --break-lock.
		{"same host name, another PID namespace, holder dead, not expired", func() Holder { h := holder("shaolin", 200); h.PIDNS = "pid:[9]"; return h }(), []int{100}, []string{"pid 100 no longer runs on this host", "expires in 40s", "--break-lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Acquire(ctx, kube, tc.me, opts(&notes{}, tc.dead...))
			var he *HeldError
			if !errors.As(err, &he) {
				t.Fatalf("err %v, want a HeldError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if got := infoOf(s.get()).Holder.PID; got != 100 {
				t.Errorf("lease changed hands to pid %d", got)
			}
		})
	}
}

func TestStaleSameHostDeadPidTakenOver(t *testing.T) {
	kube, s := newKube(t)
	s.seed(holder("shaolin", 100), t0.Add(-2*time.Minute))
	n := &notes{}
	me := holder("shaolin", 200)
	l, err := Acquire(context.Background(), kube, me, opts(n, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	if got := infoOf(s.get()).Holder; got != me {
		t.Errorf("holder %+v, want %+v", got, me)
	}
	if !n.has("took over the stale lock of `haadm promote` by root@shaolin (pid 100): pid 100 no longer runs on this host, last renewed 2m0s ago") {
		t.Errorf("notes: %q", n.all)
	}
}

func TestStaleRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		me   Holder
		dead []int
	}{
		{"other host", holder("emei", 200), []int{100}},
		{"same host, pid runs", holder("shaolin", 200), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, s := newKube(t)
			s.seed(holder("shaolin", 100), t0.Add(-3*time.Minute))
			_, err := Acquire(context.Background(), kube, tc.me, opts(&notes{}, tc.dead...))
			var he *HeldError
			if !errors.As(err, &he) || !he.Stale {
				t.Fatalf("err %v, want a stale HeldError", err)
			}
			for _, w := range []string{"root@shaolin (pid 100)", "last renewed 3m0s ago", "stale", "haadm was probably killed or lost its connection",
				"if no haadm is running against this cluster, run again with --break-lock"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if infoOf(s.get()).Holder.PID != 100 {
				t.Error("lease changed hands")
			}
		})
	}
}

func TestBreakLock(t *testing.T) {
	kube, s := newKube(t)
	s.seed(holder("shaolin", 100), t0.Add(-time.Second)) // fresh: held by a live run elsewhere
	n := &notes{}
	me := holder("emei", 200)
	o := opts(n)
	o.BreakLock = true
	l, err := Acquire(context.Background(), kube, me, o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	if got := infoOf(s.get()).Holder; got != me {
		t.Errorf("holder %+v", got)
	}
	if !n.has("broke the lock held by `haadm promote` by root@shaolin (pid 100), last renewed 1s ago (--break-lock)") {
		t.Errorf("notes: %q", n.all)
	}
	// With nothing to break, --break-lock just takes the lock.
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(context.Background(), kube, me, o)
	if err != nil {
		t.Fatal(err)
	}
	_ = l2.Release(context.Background())
}

// Two runs on one host, re-run after a SIGKILL, both find the same stale
// lock: the resourceVersion lets exactly one take it over, and the other
// is told who won.
func TestTakeoverRace(t *testing.T) {
	kube, s := newKube(t)
	s.seed(holder("shaolin", 100), t0.Add(-2*time.Minute))
	s.gets, s.gate = 2, make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	locks := make([]*Lock, 2)
	for i := range 2 {
		wg.Go(func() {
			locks[i], errs[i] = Acquire(context.Background(), gatedKube{kube, s}, holder("shaolin", 201+i), opts(&notes{}, 100))
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		if err == nil {
			if won >= 0 {
				t.Fatal("both runs took the lock")
			}
			won = i
			continue
		}
		var he *HeldError
		if !errors.As(err, &he) || he.Stale {
			t.Errorf("loser: %v, want a HeldError of a live holder", err)
		}
	}
	if won < 0 {
		t.Fatalf("nobody took the lock: %v", errs)
	}
	defer locks[won].Release(context.Background())
	lost := errs[1-won].Error()
	if want := fmt.Sprintf("(pid %d)", 201+won); !strings.Contains(lost, want) {
		t.Errorf("loser's error does not name the winner %s: %v", want, lost)
	}
	if got := infoOf(s.get()).Holder.PID; got != 201+won {
		t.Errorf("lease held by pid %d, want %d", got, 201+won)
	}
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRenewal(t *testing.T) {
	kube, s := newKube(t)
	clk := &clock{t: t0}
	n := &notes{}
	o := opts(n)
	o.Now, o.RenewEvery = clk.now, 5*time.Millisecond
	l, err := Acquire(context.Background(), kube, holder("shaolin", 100), o)
	if err != nil {
		t.Fatal(err)
	}
	renewedAt := func(want time.Time) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if r := s.get().Spec.RenewTime; r != nil && r.Time.Equal(want) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("renewTime %v, want %v", s.get().Spec.RenewTime, want)
	}
	clk.add(30 * time.Second)
	renewedAt(t0.Add(30 * time.Second))

	// The API goes away for a while (an apiserver restart): noted, not
	// fatal, and renewed again once it is back.
	s.mu.Lock()
	s.down = true
	s.mu.Unlock()
	clk.add(30 * time.Second)
	for deadline := time.Now().Add(5 * time.Second); !n.has("renewing the lock failed") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !n.has("renewing the lock failed (retrying every 5ms): dial tcp") {
		t.Fatalf("no note of the failed renewal: %q", n.all)
	}
	// Down for longer than the lease lasts: worth the operator's attention.
	clk.add(31 * time.Second)
	for deadline := time.Now().Add(5 * time.Second); !n.has("looks stale") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !n.has("the lock has not been renewed for 1m1s") {
		t.Fatalf("no warning of a lock gone stale: %q", n.all)
	}
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
	renewedAt(t0.Add(91 * time.Second))
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !n.has("lock renewed again") {
		t.Errorf("notes: %q", n.all)
	}
	if s.get() != nil {
		t.Error("lease left after Release")
	}
}

// A run whose lock was broken and taken by another must neither renew
// nor delete the other's lease.
func TestReleaseLeavesOthersLease(t *testing.T) {
	kube, s := newKube(t)
	n := &notes{}
	o := opts(n)
	o.RenewEvery = 5 * time.Millisecond
	l, err := Acquire(context.Background(), kube, holder("shaolin", 100), o)
	if err != nil {
		t.Fatal(err)
	}
	other := holder("emei", 300)
	s.seed(other, t0) // what --break-lock on emei leaves
	for deadline := time.Now().Add(5 * time.Second); !n.has("lost the lock") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !n.has("lost the lock: it is now held by `haadm promote` by root@emei (pid 300)") {
		t.Errorf("notes: %q", n.all)
	}
	before := s.get()
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := s.get()
	if after == nil || infoOf(after).Holder != other || after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("Release touched the other run's lease: %v", after)
	}
	if !n.has("left in place") {
		t.Errorf("notes: %q", n.all)
	}
}

// A Lease of the same name that haadm did not write is named as it is.
func TestForeignLease(t *testing.T) {
	kube, s := newKube(t)
	id := "someone"
	renew := metav1.NewMicroTime(t0.Add(-time.Second))
	s.lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace, ResourceVersion: "7"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, RenewTime: &renew}}
	_, err := Acquire(context.Background(), kube, holder("shaolin", 100), opts(&notes{}))
	if err == nil || !strings.Contains(err.Error(), `"someone" (not written by haadm)`) {
		t.Errorf("err %v", err)
	}
}

// TestKilledHolderTakenOverAtOnce: same boot and PID namespace, and the
// pid gone: the holder is certainly dead (SIGKILLed), so re-running the
// command takes the lock without waiting for it to expire. Without the
// namespace, or in another, the lock is left to expire.
func TestKilledHolderTakenOverAtOnce(t *testing.T) {
	ns := func(h Holder, boot, pidns string) Holder { h.Boot, h.PIDNS = boot, pidns; return h }
	for _, tc := range []struct {
		name     string
		old, me  Holder
		takeOver bool
	}{
		{"same boot and namespace", ns(holder("shaolin", 100), "b1", "pid:[1]"), ns(holder("shaolin", 200), "b1", "pid:[1]"), true},
		{"another PID namespace", ns(holder("shaolin", 100), "b1", "pid:[2]"), ns(holder("shaolin", 200), "b1", "pid:[1]"), false},
		{"another boot", ns(holder("shaolin", 100), "b0", "pid:[1]"), ns(holder("shaolin", 200), "b1", "pid:[1]"), false},
		{"holder without namespace", ns(holder("shaolin", 100), "", ""), ns(holder("shaolin", 200), "b1", "pid:[1]"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, s := newKube(t)
			s.seed(tc.old, t0.Add(-5*time.Second))
			l, err := Acquire(context.Background(), kube, tc.me, opts(&notes{}, 100))
			if tc.takeOver {
				if err != nil {
					t.Fatalf("not taken over: %v", err)
				}
				l.Release(context.Background())
				return
			}
			var he *HeldError
			if !errors.As(err, &he) || !he.Dead {
				t.Fatalf("err %v, want a HeldError for a dead holder (left to expire)", err)
			}
		})
	}
}

// TestClearRestored removes a lock not renewed since the restore began and
// leaves one renewed after it alone.
func TestClearRestored(t *testing.T) {
	kube, s := newKube(t)
	s.seed(holder("shaolin", 100), t0.Add(-time.Hour))
	info, err := ClearRestored(context.Background(), kube, t0)
	if err != nil || info == nil || info.Holder.PID != 100 || s.get() != nil {
		t.Fatalf("old lock: cleared %+v, %v; left %v", info, err, s.get())
	}
	s.seed(holder("emei", 200), t0.Add(time.Second))
	if info, err := ClearRestored(context.Background(), kube, t0); err != nil || info != nil || s.get() == nil {
		t.Errorf("a lock renewed after the restore began: cleared %+v, %v", info, err)
	}
}
