# haadm: grow a single-master kubeadm cluster into an HA control plane.
SHELL := /bin/bash
GO ?= go
BIN := bin/haadm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LAB := .lab
HAADM_LAB := $(BIN) --kubeconfig $(LAB)/kubeconfig --ssh-config $(LAB)/ssh_config

.PHONY: all build test e2e check lab lab-down demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X github.com/haadm/haadm/cmd.version=$(VERSION)" -o $(BIN) .

# Unit and integration tests: real sshd, real etcd (embedded), a real
# kube-apiserver where a test needs one; no lab.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# The lab: a real single-master kubeadm cluster (see lab/lab.sh).
lab: build
	bash lab/lab.sh up

lab-down:
	bash lab/lab.sh down

# The main job: the lab, a promote, and the status of the result.
demo: lab
	$(HAADM_LAB) promote --nodes emei,wudang --lb-node emei
	$(HAADM_LAB) status

# End to end: lab up, assertions, promote, failover; the lab is torn down after.
# End to end, once per load-balancer layout (external nginx, node-local),
# each on a fresh single-master lab; the lab is removed at the end.
e2e: build
	bash lab/e2e.sh

check: test e2e

clean:
	rm -rf bin
