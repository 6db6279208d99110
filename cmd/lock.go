package cmd

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/lock"
	"github.com/haadm/haadm/phases"
)

// withLock runs fn while this process holds the cluster's haadm lock
// (kube-system/haadm-lock, see package lock), so that no other haadm run
// changes the cluster meanwhile. Every command that changes a cluster
// wraps its work in it, after reading flags and opening the log and before
// anything is changed:
//
//	err = withLock(ctx, g, kube, "remove", log, func(ctx context.Context) error {
//		return ... // the run itself
//	})
//
// command names the run for other operators ("promote", "phase certs",
// "remove"). g.breakLock (--break-lock) breaks a lock someone else holds.
// When another run holds the lock, fn does not run and the error says who
// holds it and what to do. Taking over a stale lock, breaking one and
// failed renewals are reported through log. The lock is released when fn
// returns, even when ctx has ended (a SIGINT or --timeout); if that fails
// the lock expires by itself a minute later. A dry run changes nothing
// and takes no lock: it calls noteLock instead.
func withLock(ctx context.Context, g *globalFlags, kube kubernetes.Interface, command string, log *phases.Progress, fn func(ctx context.Context) error) error {
	t0 := time.Now()
	l, err := lock.Acquire(ctx, kube, currentHolder(command), lock.Options{
		BreakLock: g.breakLock,
		Note:      func(msg string) { log.Step("lock", "", 0, msg) },
		Retry:     func(msg string) { log.Detail("lock", "", msg) },
	})
	if err != nil {
		return err
	}
	log.Detail("lock", "", fmt.Sprintf("took %s/%s in %s", lock.Namespace, lock.Name, time.Since(t0).Round(time.Millisecond)))
	err = fn(ctx)
	// The run's context may be over; releasing must still be tried.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if rerr := l.Release(rctx); rerr != nil {
		log.Step("lock", "", 0, "warning: "+rerr.Error())
	}
	return err
}

// withLockIfUp is withLock for a restore, which exists for clusters whose
// API may be down: when the lock cannot even be asked for, the run goes
// on without it, saying so; a lock another run holds still refuses it.
func withLockIfUp(ctx context.Context, g *globalFlags, command string, log *phases.Progress, fn func(ctx context.Context) error) error {
	kube, err := kubeClient(g)
	if err == nil {
		_, err = lock.Peek(ctx, kube)
	}
	start := time.Now()
	if err != nil {
		log.Step("lock", "", 0, "WARNING: the API does not answer ("+err.Error()+"): running without haadm's lock; make sure no other haadm runs against this cluster")
		err = fn(ctx)
	} else {
		err = withLock(ctx, g, kube, command, log, fn)
	}
	if err != nil {
		return err
	}
	// The restored etcd holds the lock of the run that took the backup:
	// a stale lock nobody holds now.
	if kube, kerr := kubeClient(g); kerr == nil {
		if info, cerr := lock.ClearRestored(ctx, kube, start); cerr != nil {
			log.Step("lock", "", 0, "warning: the lock restored with the snapshot could not be cleared: "+cerr.Error())
		} else if info != nil {
			log.Step("lock", "", 0, "cleared the lock restored with the snapshot (held by "+info.Who()+" when the backup was taken)")
		}
	}
	return nil
}

// noteLock says, for a dry run, when another run holds the lock: the real
// run would then be refused.
func noteLock(ctx context.Context, kube kubernetes.Interface, log *phases.Progress) {
	info, err := lock.Peek(ctx, kube)
	switch {
	case err != nil:
		log.Detail("lock", "", err.Error())
	case info != nil:
		now := time.Now()
		state := "a real run now would be refused until it finishes"
		if info.Expired(now) {
			state = "stale (not renewed for " + now.Sub(info.Renewed).Round(time.Second).String() + "): a real run may need --break-lock"
		}
		log.Step("lock", "", 0, fmt.Sprintf("held by %s, last renewed %s ago; %s", info.Who(), now.Sub(info.Renewed).Round(time.Second), state))
	}
}

// currentHolder is this process as the lock records it.
func currentHolder(command string) lock.Holder {
	h := lock.Holder{Command: command, PID: os.Getpid(), Started: time.Now().UTC()}
	h.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.Boot = strings.TrimSpace(string(b))
	}
	h.PIDNS, _ = os.Readlink("/proc/self/ns/pid")
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	} else {
		h.User = os.Getenv("USER")
	}
	// Under sudo the person is more use to whoever reads the lock than
	// "root".
	if s := os.Getenv("SUDO_USER"); s != "" && s != h.User {
		h.User = s + " (sudo " + h.User + ")"
	}
	return h
}
