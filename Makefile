GO ?= go
BIN := bin/edbgpd

.PHONY: all build test vet demo clean

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

clean:
	rm -rf bin
