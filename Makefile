# haadm: grow a single-master kubeadm cluster into an HA control plane.
SHELL := /bin/bash
GO ?= go
BIN := bin/haadm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
# SOURCE_DATE_EPOCH, when set, makes the date (and so the binaries) reproducible.
BUILD_DATE ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X github.com/haadm/haadm/cmd.version=$(VERSION) -X github.com/haadm/haadm/cmd.commit=$(COMMIT) -X github.com/haadm/haadm/cmd.buildDate=$(BUILD_DATE)
RELEASE_ARCHES := amd64 arm64 ppc64le s390x
LAB := .lab
HAADM_LAB := $(BIN) --kubeconfig $(LAB)/kubeconfig --ssh-config $(LAB)/ssh_config

.PHONY: all build release deps test e2e e2e-all check lab lab-down demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# Static Linux binaries for every architecture kubeadm ships, named
# haadm-<version>-linux-<arch>, and their SHA256SUMS (check with
# `sha256sum -c SHA256SUMS` in dist/).
release:
	rm -rf dist && mkdir -p dist
	set -e; for arch in $(RELEASE_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o dist/haadm-$(VERSION)-linux-$$arch . ; \
	done
	cd dist && sha256sum haadm-$(VERSION)-linux-* > SHA256SUMS

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
	$(HAADM_LAB) promote --nodes emei,wudang
	$(HAADM_LAB) status

# End to end, CI's set (lab/e2e.sh): external nginx on 4 nodes (remove,
# replace, rollback, restore), node-local on the production profile (an
# interrupted promote, faults), and the older minor through the bastion as a
# sudo user with haproxy behind a virtual address; each on a fresh
# single-master lab, the lab removed at the end.
e2e: build
	bash lab/e2e.sh

# Every scenario, CI's and the longer ones: every layout on both profiles,
# both engines, both access modes, every fault.
e2e-all: build
	E2E_FAULTS=all E2E_RUNS="v1.36.3:external:plain:4 v1.36.3:node-local:production v1.35:vip:plain:4:bastion:haproxy:v1.36.3 v1.35:external v1.36.3:external:production:4 v1.36.3:vip:production:4:direct:nginx v1.36.3:node-local:production:3:bastion:haproxy" bash lab/e2e.sh

check: test e2e

# The benchmark (issue 10; not part of test, check or CI): each scenario on
# BENCH_RUNS (3) fresh labs, holding the lab lock throughout; BENCH_ONLY
# picks scenarios (bench/cmd/bench says which). Writes bench/results/
# latest.json, latest.md and the plots.
bench: build
	$(GO) build -o bin/bench ./bench/cmd/bench
	bin/bench

clean:
	rm -rf bin dist
