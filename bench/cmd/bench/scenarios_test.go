package main

import "testing"

func TestJoinLine(t *testing.T) {
	t.Parallel()
	// What the lab's shaolin prints: kubeadm's warning (no default
	// route), then the command.
	out := "W1201 23:53:04.799479     843 common.go:198] WARNING: could not obtain a bind address for the API Server: no default routes found\n" +
		"kubeadm join 10.250.0.11:6443 --token a.b --discovery-token-ca-cert-hash sha256:00 \n"
	if got, want := joinLine(out), "kubeadm join 10.250.0.11:6443 --token a.b --discovery-token-ca-cert-hash sha256:00"; got != want {
		t.Errorf("joinLine = %q, want %q", got, want)
	}
	if got := joinLine("error: no token\n"); got != "" {
		t.Errorf("no join line: %q", got)
	}
}
