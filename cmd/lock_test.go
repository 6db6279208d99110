package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/haadm/haadm/lock"
	"github.com/haadm/haadm/phases"
)

// othersLease is the lock as a live run on another host leaves it.
func othersLease(renewed time.Time) *coordinationv1.Lease {
	id := `{"command":"remove","user":"alice","host":"elsewhere","pid":4242,"started":"2026-01-02T03:04:05Z"}`
	secs := int32(60)
	t := metav1.NewMicroTime(renewed)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lock.Name, Namespace: lock.Namespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, RenewTime: &t}}
}

func TestWithLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kube := fake.NewClientset()
	var console bytes.Buffer
	log := phases.NewProgress(&console, &bytes.Buffer{})
	ran := false
	err := withLock(ctx, &globalFlags{}, kube, "phase certs", log, func(ctx context.Context) error {
		ran = true
		info, err := lock.Peek(ctx, kube)
		if err != nil || info == nil {
			t.Fatalf("no lock held while fn runs: %v", err)
		}
		if info.Holder.Command != "phase certs" || info.Holder.PID != os.Getpid() || info.Holder.Host == "" || info.Holder.User == "" {
			t.Errorf("holder %+v", info.Holder)
		}
		return errors.New("boom")
	})
	if !ran || err == nil || err.Error() != "boom" {
		t.Fatalf("ran %v, err %v: want fn's own error", ran, err)
	}
	if info, _ := lock.Peek(ctx, kube); info != nil {
		t.Errorf("lock still held after the run: %+v", info)
	}
}

func TestWithLockHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kube := fake.NewClientset(othersLease(time.Now().Add(-3 * time.Second)))
	log := phases.NewProgress(&bytes.Buffer{}, &bytes.Buffer{})
	err := withLock(ctx, &globalFlags{}, kube, "promote", log, func(context.Context) error {
		t.Error("fn ran while another run holds the lock")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "`haadm remove` by alice@elsewhere (pid 4242)") || !strings.Contains(err.Error(), "wait for it") {
		t.Errorf("err %v", err)
	}
	if info, _ := lock.Peek(ctx, kube); info == nil || info.Holder.PID != 4242 {
		t.Errorf("the other run's lock was touched: %+v", info)
	}

	// --break-lock: said on the console, whose lock it was.
	var console bytes.Buffer
	log = phases.NewProgress(&console, &bytes.Buffer{})
	ran := false
	err = withLock(ctx, &globalFlags{breakLock: true}, kube, "promote", log, func(context.Context) error { ran = true; return nil })
	if err != nil || !ran {
		t.Fatalf("--break-lock: ran %v, err %v", ran, err)
	}
	if !strings.Contains(console.String(), "[lock] broke the lock held by `haadm remove` by alice@elsewhere (pid 4242)") {
		t.Errorf("console: %q", console.String())
	}
	if info, _ := lock.Peek(ctx, kube); info != nil {
		t.Errorf("lock left after the run: %+v", info)
	}
}

// A dry run takes no lock but says who holds it.
func TestNoteLock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		kube  *fake.Clientset
		wants []string
	}{
		{"free", fake.NewClientset(), nil},
		{"held", fake.NewClientset(othersLease(time.Now().Add(-2 * time.Second))), []string{"[lock] held by `haadm remove` by alice@elsewhere (pid 4242)", "a real run now would be refused"}},
		{"stale", fake.NewClientset(othersLease(time.Now().Add(-10 * time.Minute))), []string{"stale", "--break-lock"}},
	} {
		var console bytes.Buffer
		noteLock(context.Background(), tc.kube, phases.NewProgress(&console, &bytes.Buffer{}))
		if len(tc.wants) == 0 && console.Len() != 0 {
			t.Errorf("%s: %q", tc.name, console.String())
		}
		for _, w := range tc.wants {
			if !strings.Contains(console.String(), w) {
				t.Errorf("%s: console lacks %q: %q", tc.name, w, console.String())
			}
		}
	}
}
