# haadm: grow a single-master kubeadm cluster into an HA control plane.
SHELL := /bin/bash
GO ?= go
BIN := bin/haadm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LAB := .lab
HAADM_LAB := $(BIN) --kubeconfig $(LAB)/kubeconfig --ssh-config $(LAB)/ssh_config

.PHONY: all build deps test e2e e2e-all check lab lab-down demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X github.com/haadm/haadm/cmd.version=$(VERSION)" -o $(BIN) .

# The Debian packages the tests and the lab need (sshd, nginx, haproxy,
# containerd...); quick when they are there.
deps:
	bash lab/deps.sh

# Unit and integration tests: real sshd, real etcd (embedded), a real
# kube-apiserver where a test needs one; no lab.
test: deps
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

# End to end, once per load-balancer layout (external nginx, node-local) and
# on the older minor, each on a fresh single-master lab: assertions, promote,
# failover; the lab is removed at the end.
e2e: build
	bash lab/e2e.sh

# Every scenario, CI's and the longer ones: both layouts on both profiles.
e2e-all: build
	E2E_FAULTS=all E2E_RUNS="v1.36.3:external:plain:4 v1.36.3:node-local:production v1.35:external v1.36.3:node-local v1.36.3:external:production:4" bash lab/e2e.sh

check: test e2e

clean:
	rm -rf bin
