# Developer entry points. `make` alone lists them.

GO ?= go
# Extra arguments for go test, e.g. make test ARGS='-run TestPolicy -v'
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help test lint demo build image bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test: ## go vet, gofmt check and all tests with -race, against a throwaway PostgreSQL unless TEST_DATABASE_URL is set (ARGS=... goes to go test)
	bash scripts/test.sh $(ARGS)

lint: ## gofmt check and go vet
	bash scripts/test.sh --lint

demo: ## run the retention job end to end against a throwaway PostgreSQL and a fake Convai API
	bash scripts/demo.sh

build: ## build bin/retention and bin/convai-fake
	$(GO) build -o bin/ ./cmd/...

image: ## build the release image FROM scratch with podman, docker or buildah (TAG=NAME:TAG, default convai-retention:VERSION); see k8s/README.md
	bash scripts/image.sh $(if $(TAG),-t $(TAG))

bench: ## measure real runs over 1M expired sessions on a throwaway PostgreSQL (ARGS='--sessions 10000000', ARGS='--help'; ARGS='go ...' runs the go test benchmarks); see docs/BENCHMARKS.md
	bash scripts/bench.sh $(ARGS)

clean: ## remove build output and test leftovers
	rm -rf bin .tmp
