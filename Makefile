# rtserver: build, run, test, bench.
GO      ?= go
CONFIG  ?= config.hcl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/rtserver/rtserver/core/internal/server.Version=$(VERSION)
BIN     := bin/rtserver
# Every example plugin: a directory under examples/ with a main package.
PLUGINS := $(patsubst examples/%/,%,$(dir $(wildcard examples/*/main.go)))
# The npm suites that `make test` runs through `go test`.
NODE_SUITES := $(patsubst %/package.json,%,$(wildcard core/internal/*/testdata/node/package.json))
# The load tool's Node reference (cluster-node scenario), run small by its Go test.
NODE_SUITES += core/cmd/loadtest/noderef

.PHONY: all build plugins run cluster test node-deps bench fuzz proto vet check-config clean client admin-ui

all: build plugins

build: client
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./core/cmd/rtserver

plugins:
	@mkdir -p plugins
	@for p in $(PLUGINS); do \
		echo "building plugin $$p"; \
		$(GO) build -o plugins/.$$p.tmp ./examples/$$p && mv -f plugins/.$$p.tmp plugins/$$p || exit 1; \
	done

# The official socket.io-client bundles the server serves at /socket.io/socket.io.js: the
# pinned npm package, fetched like a Go module and never committed. Without npm the server
# still builds and runs; those routes then answer 404 with a hint.
client:
	@if [ -f web/client/node_modules/socket.io-client/package.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		echo "npm ci in web/client (socket.io-client bundles)"; \
		(cd web/client && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	else \
		echo "npm not found: skipping the socket.io-client bundles (/socket.io/socket.io.js will answer 404)"; \
	fi

# The official Admin UI's build, served at admin.ui_path: fetched from npm at the pinned
# version, never committed. Without npm the server runs and that path answers 404.
admin-ui:
	@if [ -d web/admin-ui/node_modules/@socket.io/admin-ui/ui/dist ]; then :; \
	elif command -v npm >/dev/null; then (cd web/admin-ui && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); \
	else echo "admin-ui: npm not found; the Admin UI will not be served"; fi

# The first of the README's two commands.
run: build plugins admin-ui
	./$(BIN) run --config $(CONFIG)

# Three nodes on ports 3001-3003 sharing the local Redis (REDIS_URL) and one pair of
# secrets, so that a token or API key works on every node. Ctrl-C stops all three.
REDIS_URL ?= redis://127.0.0.1:6379/0
cluster: build plugins
	@jwt=$${JWT_SECRET:-$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}; \
	key=$${API_KEY:-$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}; \
	echo "cluster: nodes on :3001 :3002 :3003, Redis $(REDIS_URL)"; \
	echo "cluster: JWT_SECRET=$$jwt API_KEY=$$key"; \
	trap 'kill 0' INT TERM; \
	for port in 3001 3002 3003; do \
		PORT=$$port REDIS_URL=$(REDIS_URL) JWT_SECRET=$$jwt API_KEY=$$key ./$(BIN) run --config $(CONFIG) & \
	done; \
	wait

check-config: build
	./$(BIN) check-config --config $(CONFIG)

# The second: every test, Go and npm, with the race detector.
test: node-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	@# The transport once more without the race detector: in race builds a gate orders
	@# the listener and the pollers (core/internal/engineio/race.go), which hides
	@# orderings that a release build meets.
	$(GO) test -count=1 -timeout 5m ./core/internal/engineio/

node-deps:
	@for d in $(NODE_SUITES); do \
		if [ ! -d $$d/node_modules ]; then \
			echo "npm install in $$d"; \
			(cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
		fi; \
	done

# The load tool's default sizes need an open-file hard limit of 20,000 or more; on smaller
# machines pass e.g. LOADTEST_FLAGS="-conns 4000 -storm-conns 4000".
LOADTEST_FLAGS ?=
bench: build plugins
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./core/...
	$(GO) run ./core/cmd/loadtest -server $(BIN) $(LOADTEST_FLAGS)

# Short fuzz runs of every decoder (go test -fuzz takes one target at a time). The fuzzing
# engine itself sometimes ends a time-boxed run with "context deadline exceeded" and no
# failing input; such a run is repeated (twice at most). A real finding prints "Failing input".
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			for try in 1 2 3; do \
				out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); rc=$$?; \
				echo "$$out" | tail -3; \
				[ $$rc -eq 0 ] && break; \
				if [ $$try -eq 3 ] || echo "$$out" | grep -q 'Failing input' || ! echo "$$out" | grep -q 'context deadline exceeded'; then \
					echo "$$out"; exit 1; \
				fi; \
				echo "fuzzing engine timed out without a finding; again"; \
			done; \
		done; \
	done

proto:
	bash proto/gen.sh

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
	find plugins -type f ! -name README.md -delete
