GO ?= go
BIN := bin/edbgpd

.PHONY: all build test vet lint-lua demo bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/edbgpd

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# luacheck (Debian: lua-check) on every shipped script and example, with
# the .luacheckrc edbgpd init writes: the sandbox's globals only.
lint-lua: build
	@command -v luacheck >/dev/null || { echo "luacheck is needed: apt-get install lua-check"; exit 1; }
	$(BIN) init --print luacheckrc > bin/luacheckrc
	luacheck --no-color --config bin/luacheckrc $$(git ls-files 'scripts/*.lua' 'examples/*.lua')

# All tests, vet and luacheck included. The end-to-end tests open BGP
# sessions on 127.0.0.x and take a few minutes.
test: vet lint-lua
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
