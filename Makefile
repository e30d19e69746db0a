# atlantis-lock-operator
#
# Every tool is built from Go modules pinned in hack/tools/go.mod into bin/; nothing is
# downloaded as a prebuilt binary. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

LOCALBIN ?= $(CURDIR)/bin
# envtest, the e2e tests and `make run` find etcd, kube-apiserver and kubectl here.
export KUBEBUILDER_ASSETS ?= $(LOCALBIN)

GO ?= go
GOTEST_FLAGS ?= -count=1
IMG ?= ghcr.io/runatlantis/atlantis-lock-operator:dev
# Extra flags of the manager under `make run` (see `bin/manager --help`).
RUN_ARGS ?= --dev

# Go modules nested in this repository that `go ... ./...` at the root does not enter:
# pkg/atlantis imports Atlantis, whose large dependency tree must stay out of the
# operator's module (see pkg/atlantis/doc.go); cmd/redis-gateway (the Redis-protocol
# gateway for unmodified Atlantis) imports pkg/atlantis, and its tests Atlantis's
# Redis backend and miniredis. fmt, vet, lint and test run in each.
# After a change to the root go.mod, run `go mod tidy` in each of them too.
NESTED_MODULES := pkg/atlantis cmd/redis-gateway
# in_nested runs a command in every nested module.
in_nested = for m in $(NESTED_MODULES); do (cd $$m && $(1)) || exit 1; done

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
HELM ?= $(LOCALBIN)/helm
KUBECTL ?= $(LOCALBIN)/kubectl

TOOL_BINS := $(addprefix $(LOCALBIN)/,controller-gen golangci-lint helm kubectl kube-apiserver kube-controller-manager etcd)
TOOLS_SRC := hack/tools/go.mod hack/tools/go.sum hack/tools/etcd/main.go

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the Go markers, and copy both into the chart.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./internal/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# The chart ships the CRDs and renders its manager (Cluster)Roles from the generated role.
	@if [ -d charts/atlantis-lock-operator/crds ]; then cp config/crd/bases/*.yaml charts/atlantis-lock-operator/crds/; cp config/rbac/role.yaml charts/atlantis-lock-operator/files/manager-role.yaml; fi

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	$(GO) fmt ./...
	$(call in_nested,$(GO) fmt ./...)

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...
	$(call in_nested,$(GO) vet ./...)

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...
	$(call in_nested,$(GOLANGCI_LINT) run --allow-parallel-runners ./...)

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and fix what it can.
	$(GOLANGCI_LINT) run --fix ./...
	$(call in_nested,$(GOLANGCI_LINT) run --fix ./...)

.PHONY: verify
verify: manifests generate fmt ## Regenerate everything and fail if that changed a tracked file.
	@if [ -n "$$(git status --porcelain --untracked-files=all -- api config charts internal cmd pkg docs)" ]; then \
		echo "make verify: generated files are out of date; run 'make manifests generate fmt' and commit:"; \
		git status --porcelain --untracked-files=all -- api config charts internal cmd pkg docs; \
		git --no-pager diff --stat; exit 1; fi
	@echo "make verify: generated files are up to date"

.PHONY: test
test: tools manifests generate vet ## Run the unit and integration (envtest) tests, and the Atlantis adapter's differential test.
	$(GO) test $(GOTEST_FLAGS) ./...
	$(call in_nested,$(GO) test $(GOTEST_FLAGS) ./...)

# How long the end-to-end tests may take before go test stops them (about 5 min).
E2E_TIMEOUT ?= 15m
# How long `make test-e2e` fuzzes each fuzz target (`make fuzz` alone: FUZZTIME).
E2E_FUZZTIME ?= 10s

.PHONY: test-e2e
test-e2e: tools build ## Run the end-to-end tests (test/e2e: helm install, two managers as the chart's ServiceAccount, kubectl, lock clients across a leader failover, uninstall; the fault tests; an unmodified Atlantis on the Redis gateway), then the bad-input tests (hostile LockRequests, floods, the chart's Atlantis RBAC) and every fuzz target for E2E_FUZZTIME.
	$(GO) test -tags e2e $(GOTEST_FLAGS) -timeout $(E2E_TIMEOUT) -v ./test/e2e/...
	@# An unmodified Atlantis (bin/atlantis) on the Redis gateway (bin/redis-gateway).
	cd cmd/redis-gateway && $(GO) test -tags e2e $(GOTEST_FLAGS) -timeout $(E2E_TIMEOUT) -v ./test/e2e/...
	$(GO) test -tags e2e $(GOTEST_FLAGS) -timeout $(E2E_TIMEOUT) ./test/apivalidation/...
	$(MAKE) fuzz FUZZTIME=$(E2E_FUZZTIME)

# How long `make fuzz` fuzzes each target.
FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: tools ## Fuzz every fuzz target (lock keys and object names, the config loader, the request conversion, the decision) for FUZZTIME each (default 30s).
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" hack/fuzz.sh

.PHONY: cover
cover: tools ## Run the tests with a coverage report in bin/cover.out.
	$(GO) test $(GOTEST_FLAGS) -coverprofile=$(LOCALBIN)/cover.out ./...
	$(GO) tool cover -func=$(LOCALBIN)/cover.out | tail -1

##@ Build

.PHONY: build
build: manifests generate ## Build the manager, the kubectl plugin (bin/kubectl-lock) and the Redis gateway (bin/redis-gateway) into bin/.
	$(GO) build -o $(LOCALBIN)/manager ./cmd
	$(GO) build -o $(LOCALBIN)/kubectl-lock ./cmd/kubectl-lock
	cd cmd/redis-gateway && $(GO) build -o $(LOCALBIN)/redis-gateway .

# The manager image in config/manager/manager.yaml, replaced by IMG in dist/install.yaml.
INSTALLER_IMAGE_PLACEHOLDER := controller:latest

.PHONY: build-installer
build-installer: manifests $(KUBECTL) ## Write dist/install.yaml (namespace, CRDs, RBAC, manager, metrics Service) from config/default, with the image IMG.
	@mkdir -p dist
	$(KUBECTL) kustomize config/default | sed 's|image: $(INSTALLER_IMAGE_PLACEHOLDER)$$|image: $(IMG)|' > dist/install.yaml
	@grep -qF 'image: $(IMG)' dist/install.yaml || { echo "build-installer: no 'image: $(INSTALLER_IMAGE_PLACEHOLDER)' in config/default to replace with $(IMG)"; exit 1; }
	@echo "wrote dist/install.yaml with image $(IMG); install with: kubectl apply --server-side -f dist/install.yaml"

.PHONY: run
run: tools build ## Start a local control plane (or use $KUBECONFIG with USE_EXISTING_CLUSTER=true), install the CRDs and run the operator.
	@# Out of a cluster the leader election Lease has no pod namespace to default to.
	$(GO) run ./hack/localcluster -- $(LOCALBIN)/manager --leader-election-namespace=default $(RUN_ARGS)

##@ Benchmarks

# Flags of test/bench, e.g. BENCH_ARGS="-clients 16 -keys 4 -json bin/bench.json".
BENCH_ARGS ?=

# Flags of the Redis gateway's benchmark (cmd/redis-gateway/test/bench), e.g.
# GATEWAY_BENCH_ARGS="-samples 1000 -json bin/bench-gateway.json". It is built in its own
# module and run from here, so that its paths are the repository's, as BENCH_ARGS's are.
GATEWAY_BENCH_ARGS ?=

.PHONY: bench
bench: tools build ## Measure the operator against DESIGN's Performance targets on a local control plane (BENCH_ARGS: flags of test/bench), then the Redis gateway: TryLock and Unlock through Atlantis's RedisDB beside miniredis (GATEWAY_BENCH_ARGS).
	$(GO) run ./test/bench $(BENCH_ARGS)
	$(GO) -C cmd/redis-gateway build -o $(LOCALBIN)/gateway-bench ./test/bench
	$(LOCALBIN)/gateway-bench $(GATEWAY_BENCH_ARGS)

# Flags of test/scale, e.g. SCALE_ARGS="-held 3000 -queued 3000 -json bin/scale.json".
SCALE_ARGS ?=

.PHONY: bench-scale
bench-scale: tools build ## Measure the operator (bin/manager as its own process, with the chart's memory defaults) with 10,000 locks held and 10,000 queued: memory against issue 13's targets, CPU, queue depth, restart and rebuild, API requests (5 to 15 min here; SCALE_ARGS: flags of test/scale, -go-defaults for Go's memory defaults).
	$(GO) run ./test/scale $(SCALE_ARGS)

# How long `make soak` runs its traffic; the checks and the cleanup follow (under a minute).
DURATION ?= 2m
# Flags of test/soak, e.g. SOAK_ARGS="-clients 8 -json bin/soak.json".
SOAK_ARGS ?=

.PHONY: soak
soak: tools build ## Run mixed lock traffic through pkg/lockclient for DURATION (default 2m), then check every grant, request and queue, the cleanup and the operator's memory (SOAK_ARGS: flags of test/soak).
	$(GO) run ./test/soak -duration $(DURATION) $(SOAK_ARGS)

##@ Tools

.PHONY: tools
tools: $(TOOL_BINS) $(LOCALBIN)/atlantis ## Build every tool pinned in hack/tools/go.mod, and the unmodified Atlantis server of hack/tools/atlantis/go.mod, into bin/ (skipped when up to date).

# One `go install` for all tools: they share most of their packages, so building them
# together is much faster than one by one. It runs again only when the pins change.
$(TOOL_BINS) &: $(TOOLS_SRC)
	@mkdir -p $(LOCALBIN)
	cd hack/tools && GOBIN=$(LOCALBIN) $(GO) install tool
	@touch $(TOOL_BINS)

# The Atlantis server (github.com/runatlantis/atlantis, pinned in a module of its own so
# that its dependencies do not move the Kubernetes tools' versions) for the Redis
# gateway's end-to-end test: an unmodified Atlantis pointed at the gateway.
ATLANTIS_TOOL_SRC := hack/tools/atlantis/go.mod hack/tools/atlantis/go.sum
$(LOCALBIN)/atlantis: $(ATLANTIS_TOOL_SRC)
	@mkdir -p $(LOCALBIN)
	cd hack/tools/atlantis && GOBIN=$(LOCALBIN) $(GO) install tool
	@touch $@

.PHONY: clean
clean: ## Remove bin/ (tools, binaries and local cluster state) and dist/.
	rm -rf $(LOCALBIN) dist
