// Package lock keeps two haadm runs from changing one cluster at once. The
// lock is a coordination.k8s.io/v1 Lease, kube-system/haadm-lock: creating
// it is taking the lock, and the API server's optimistic concurrency
// (resourceVersion) decides every race, so no two runs can both win.
//
// While a run holds it, a goroutine renews the Lease; a Lease whose renewal
// is older than its duration belongs to a run that was killed or lost its
// connection. Such a stale lock is taken over by itself only when the
// holder ran on this host under a pid that no longer runs; anything else
// needs the operator's word (BreakLock).
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Where the lock lives. kube-system because only cluster admins write
// there, and they are the only ones who run haadm.
const (
	Namespace = "kube-system"
	Name      = "haadm-lock"
)

// Defaults for Options. A renewal every 10 s survives five missed ones
// (an apiserver restart takes well under a minute) before the lock looks
// stale to another run.
const (
	DefaultDuration   = 60 * time.Second
	DefaultRenewEvery = 10 * time.Second
)

// Holder is who holds the lock: which haadm command, run by whom, where.
// It is stored as JSON in the Lease's holderIdentity, so that `kubectl get
// lease -n kube-system haadm-lock` shows it too.
type Holder struct {
	Command string    `json:"command"`
	User    string    `json:"user"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Boot and PIDNS are the host's boot ID and the process's PID
	// namespace: with them, a pid that no longer runs is certainly the
	// holder gone (not a process of another container or an earlier
	// boot), and its lock is taken over at once.
	Boot  string `json:"boot,omitempty"`
	PIDNS string `json:"pidns,omitempty"`
}

// String is the holder as the operator reads it in errors.
func (h Holder) String() string {
	return fmt.Sprintf("`haadm %s` by %s@%s (pid %d)", h.Command, h.User, h.Host, h.PID)
}

func (h Holder) identity() string {
	b, _ := json.Marshal(h) // a struct of strings, ints and a time cannot fail
	return string(b)
}

// Options tune Acquire. The zero value is what haadm uses.
type Options struct {
	// BreakLock deletes a lock held by anyone else first (the operator
	// said no other haadm runs against this cluster).
	BreakLock bool
	// Duration is the Lease's leaseDurationSeconds: how long after its
	// last renewal a lock is stale. Zero means DefaultDuration.
	Duration time.Duration
	// RenewEvery is the renewal period. Zero means DefaultRenewEvery.
	RenewEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Alive reports whether a process with this pid runs on this host;
	// nil means signal 0 (kill -0).
	Alive func(pid int) bool
	// Note receives what the operator should know: a lock taken over or
	// broken, lost to another run, or unrenewed for so long that another
	// run may take it. Nil discards.
	Note func(msg string)
	// Retry receives each failed renewal and the recovery: expected while
	// haadm restarts the apiserver it talks to, so worth a log line, not
	// the operator's attention. Nil means Note.
	Retry func(msg string)
}

func (o *Options) retry(format string, args ...any) {
	if o.Retry == nil {
		o.note(format, args...)
		return
	}
	o.Retry(fmt.Sprintf(format, args...))
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) duration() time.Duration {
	if o.Duration > 0 {
		return o.Duration
	}
	return DefaultDuration
}

func (o *Options) renewEvery() time.Duration {
	if o.RenewEvery > 0 {
		return o.RenewEvery
	}
	return DefaultRenewEvery
}

func (o *Options) alive(pid int) bool {
	if o.Alive != nil {
		return o.Alive(pid)
	}
	return ProcessAlive(pid)
}

func (o *Options) note(format string, args ...any) {
	if o.Note != nil {
		o.Note(fmt.Sprintf(format, args...))
	}
}

// ProcessAlive reports whether pid runs on this host: signal 0 checks
// without sending anything. EPERM means it runs under another user.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Info is a lock as found in the cluster.
type Info struct {
	Holder Holder
	// Raw is holderIdentity as stored, for a Lease haadm did not write.
	Raw string
	// Renewed is the last renewal (the acquisition when never renewed).
	Renewed  time.Time
	Duration time.Duration
}

// Expired reports whether the holder stopped renewing the lock.
func (i *Info) Expired(now time.Time) bool { return now.After(i.Renewed.Add(i.Duration)) }

// Who names the holder, also for a Lease haadm did not write.
func (i *Info) Who() string {
	if i.Holder.Command == "" && i.Holder.PID == 0 {
		return fmt.Sprintf("%q (not written by haadm)", i.Raw)
	}
	return i.Holder.String()
}

func infoOf(l *coordinationv1.Lease) *Info {
	i := &Info{Duration: DefaultDuration}
	if l.Spec.HolderIdentity != nil {
		i.Raw = *l.Spec.HolderIdentity
		_ = json.Unmarshal([]byte(i.Raw), &i.Holder) // not ours: Who says so
	}
	if l.Spec.LeaseDurationSeconds != nil {
		i.Duration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	switch {
	case l.Spec.RenewTime != nil:
		i.Renewed = l.Spec.RenewTime.Time
	case l.Spec.AcquireTime != nil:
		i.Renewed = l.Spec.AcquireTime.Time
	default:
		i.Renewed = l.CreationTimestamp.Time
	}
	return i
}

// Peek returns the lock as held now, or nil when nobody holds it. It
// changes nothing: dry runs and `haadm status` use it.
func Peek(ctx context.Context, kube kubernetes.Interface) (*Info, error) {
	l, err := kube.CoordinationV1().Leases(Namespace).Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lock %s/%s: %w", Namespace, Name, err)
	}
	return infoOf(l), nil
}

// HeldError is returned by Acquire when another run holds the lock.
type HeldError struct {
	Info *Info
	// Stale: the holder stopped renewing, but haadm cannot tell that it
	// is gone (another host, or its pid still runs).
	Stale bool
	// Dead: the holder ran on a host of this name and its pid no longer
	// runs here, but haadm cannot be sure it is this boot and PID
	// namespace, and the lock has not expired yet.
	Dead bool
	Now  time.Time
}

func (e *HeldError) Error() string {
	i := e.Info
	since := i.Holder.Started
	age := func(t time.Time) string { return e.Now.Sub(t).Round(time.Second).String() }
	what := fmt.Sprintf("cluster is locked by %s", i.Who())
	if !since.IsZero() {
		what += fmt.Sprintf(", running since %s (%s ago)", since.UTC().Format(time.RFC3339), age(since))
	}
	what += fmt.Sprintf(", last renewed %s ago", age(i.Renewed))
	loc := fmt.Sprintf("the lock is the Lease %s/%s", Namespace, Name)
	switch {
	case e.Stale:
		return fmt.Sprintf("%s: the lock is stale (not renewed for more than %s): haadm was probably killed or lost its connection; "+
			"if no haadm is running against this cluster, run again with --break-lock (%s)", what, i.Duration, loc)
	case e.Dead:
		return fmt.Sprintf("%s: pid %d no longer runs on this host; the lock expires in %s, then the same command takes it over; "+
			"or run again now with --break-lock (%s)", what, i.Holder.PID, i.Renewed.Add(i.Duration).Sub(e.Now).Round(time.Second), loc)
	}
	return fmt.Sprintf("%s: wait for it to finish, then run again (two runs must not change one control plane at once; %s)", what, loc)
}

// Lock is a held lock. Release it when the run ends.
type Lock struct {
	leases coordinationv1client.LeaseInterface
	id     string
	opts   Options
	stop   context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	lease *coordinationv1.Lease // as last written by us
}

// Acquire takes the lock for h, or returns a *HeldError saying who holds
// it and what to do. It renews the lock until Release. The renewal keeps
// running when ctx ends, so that a run's cleanup still holds the lock:
// only Release stops it.
func Acquire(ctx context.Context, kube kubernetes.Interface, h Holder, o Options) (*Lock, error) {
	leases := kube.CoordinationV1().Leases(Namespace)
	breakLock := o.BreakLock
	// Every attempt either wins or sees someone else's lease; a handful
	// only repeats when others keep taking and releasing it meanwhile.
	for range 5 {
		now := o.now()
		created, err := leases.Create(ctx, newLease(h, now, o.duration()), metav1.CreateOptions{})
		if err == nil {
			return start(leases, h, o, created), nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("take the lock %s/%s: %w (check --kubeconfig; haadm needs to create Leases in %s)", Namespace, Name, err, Namespace)
		}
		cur, err := leases.Get(ctx, Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // released in between
		}
		if err != nil {
			return nil, fmt.Errorf("read the lock %s/%s: %w", Namespace, Name, err)
		}
		info := infoOf(cur)
		if breakLock {
			// Break only the lease seen here: a run that takes the lock
			// after that is a live run, not the one the operator meant.
			breakLock = false
			err := leases.Delete(ctx, Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return nil, fmt.Errorf("break the lock %s/%s held by %s: %w", Namespace, Name, info.Who(), err)
			}
			if err == nil {
				o.note("broke the lock held by %s, last renewed %s ago (--break-lock)", info.Who(), now.Sub(info.Renewed).Round(time.Second))
			}
			continue
		}
		// Only a pid of this boot and PID namespace says anything about
		// the holder: the same hostname may be another container or
		// machine. A holder that is certainly gone (a run SIGKILLed a
		// moment ago) is taken over at once, so the same command run
		// again just works.
		ours := info.Holder.Host == h.Host && info.Holder.PID > 0
		sameNS := h.Boot != "" && info.Holder.Boot == h.Boot && h.PIDNS != "" && info.Holder.PIDNS == h.PIDNS
		gone := ours && !o.alive(info.Holder.PID)
		if !(gone && sameNS) {
			if !info.Expired(now) {
				return nil, &HeldError{Info: info, Dead: gone, Now: now}
			}
			return nil, &HeldError{Info: info, Stale: true, Now: now}
		}
		// The update carries the resourceVersion read above: of two runs
		// taking over the same stale lock, the API lets one win.
		take := cur.DeepCopy()
		take.Spec = newLease(h, now, o.duration()).Spec
		took, err := leases.Update(ctx, take, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue // someone else was faster: see who
		}
		if err != nil {
			return nil, fmt.Errorf("take over the stale lock %s/%s: %w", Namespace, Name, err)
		}
		o.note("took over the stale lock of %s: pid %d no longer runs on this host, last renewed %s ago",
			info.Who(), info.Holder.PID, now.Sub(info.Renewed).Round(time.Second))
		return start(leases, h, o, took), nil
	}
	return nil, fmt.Errorf("the lock %s/%s kept changing hands while haadm tried to take it: another haadm is starting against this cluster; wait for it, then run again", Namespace, Name)
}

func newLease(h Holder, now time.Time, d time.Duration) *coordinationv1.Lease {
	id := h.identity()
	secs := int32(d / time.Second)
	t := metav1.NewMicroTime(now)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "haadm"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, AcquireTime: &t, RenewTime: &t},
	}
}

func start(leases coordinationv1client.LeaseInterface, h Holder, o Options, l *coordinationv1.Lease) *Lock {
	ctx, stop := context.WithCancel(context.Background())
	lk := &Lock{leases: leases, id: h.identity(), opts: o, stop: stop, done: make(chan struct{}), lease: l}
	go lk.renewLoop(ctx)
	return lk
}

func (l *Lock) renewLoop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.renewEvery())
	defer t.Stop()
	failing, warned := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lost, err := l.renew(ctx)
		switch {
		case lost != "":
			// Someone broke the lock: renewing would fight them for it.
			l.opts.note("%s", lost)
			return
		case err != nil && ctx.Err() == nil:
			// The API may be down for a moment while haadm restarts an
			// apiserver: say so, and try again at the next tick.
			failing = true
			l.opts.retry("renewing the lock failed (retrying every %s): %v", l.opts.renewEvery(), err)
			if since := l.opts.now().Sub(l.renewed()); since > l.opts.duration() && !warned {
				warned = true
				l.opts.note("the lock has not been renewed for %s (%v): it looks stale to other runs now", since.Round(time.Second), err)
			}
		case err == nil && failing:
			failing, warned = false, false
			l.opts.retry("lock renewed again")
		}
	}
}

// renewed is the last renewal that reached the API.
func (l *Lock) renewed() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return infoOf(l.lease).Renewed
}

// renew writes a fresh renewTime; on a conflict it reads the lease again,
// and goes on only while it is still ours. lost says why it is not.
func (l *Lock) renew(ctx context.Context) (lost string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, l.opts.renewEvery())
	defer cancel()
	next := l.lease.DeepCopy()
	t := metav1.NewMicroTime(l.opts.now())
	next.Spec.RenewTime = &t
	up, err := l.leases.Update(rctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		cur, gerr := l.leases.Get(rctx, Name, metav1.GetOptions{})
		if gerr != nil && !apierrors.IsNotFound(gerr) {
			return "", gerr
		}
		if apierrors.IsNotFound(gerr) || cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != l.id {
			who := "nobody (deleted)"
			if gerr == nil {
				who = infoOf(cur).Who()
			}
			return fmt.Sprintf("lost the lock: it is now held by %s (--break-lock?); this run goes on, but no longer keeps others out", who), nil
		}
		next = cur.DeepCopy()
		next.Spec.RenewTime = &t
		up, err = l.leases.Update(rctx, next, metav1.UpdateOptions{})
	}
	if err != nil {
		return "", err
	}
	l.lease = up
	return "", nil
}

// Release stops the renewal and deletes the lock, if it is still ours: a
// lock broken and taken by another run stays with that run.
func (l *Lock) Release(ctx context.Context) error {
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	for range 3 {
		cur, err := l.leases.Get(ctx, Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release the lock %s/%s: %w; it expires by itself %s after its last renewal", Namespace, Name, err, l.opts.duration())
		}
		if cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != l.id {
			l.opts.note("the lock is held by %s now, not by this run: left in place", infoOf(cur).Who())
			return nil
		}
		err = l.leases.Delete(ctx, Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("release the lock %s/%s: %w; it expires by itself %s after its last renewal", Namespace, Name, err, l.opts.duration())
		}
	}
	return fmt.Errorf("release the lock %s/%s: it kept changing; it expires by itself %s after its last renewal", Namespace, Name, l.opts.duration())
}

// ClearRestored deletes the lock when nobody has renewed it since since:
// after an etcd restore the Lease is whatever the snapshot held (the lock
// of the run that took the backup), not a live run's, since no run could
// reach the API while the restore held it down. It reports the holder it
// removed, if any.
func ClearRestored(ctx context.Context, kube kubernetes.Interface, since time.Time) (*Info, error) {
	leases := kube.CoordinationV1().Leases(Namespace)
	cur, err := leases.Get(ctx, Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info := infoOf(cur)
	if info.Renewed.After(since) {
		return nil, nil
	}
	err = leases.Delete(ctx, Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	return info, nil
}
