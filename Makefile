GO ?= go
BIN := bin/edbgpd

.PHONY: all build test vet demo bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/edbgpd

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# All tests, vet included. The end-to-end tests open BGP sessions on
# 127.0.0.x and take about a minute.
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

# The Konami demo on one machine: edbgpd and an embedded router peer.
demo:
	$(GO) run ./examples/demo

# The full-table benchmark (BENCHMARKS.md): GoBGP alone, stock gobgpd and
# edbgpd with 0, 1 and 4 scripts, fed 1M prefixes over loopback. Needs
# ~2.5 GB of memory and a few minutes. BENCH_ARGS="-n 100000" for less.
bench: build
	$(GO) build -o bin/edbgpd-bench ./cmd/edbgpd-bench
	GOBIN=$(CURDIR)/bin $(GO) install github.com/osrg/gobgp/v3/cmd/gobgpd@v3.37.0
	bin/edbgpd-bench -edbgpd bin/edbgpd -gobgpd bin/gobgpd -json bin/bench.jsonl $(BENCH_ARGS)

clean:
	rm -rf bin
