# connectd developer targets. CI runs `make test` (see .ci/run).
GO ?= go
# The runtime and offsets packages run under the race detector; the rest (which
# start real servers and link DuckDB) run plain, to keep CI within its time.
RACE_PKGS := ./record/... ./config/... ./offsets/... ./pipeline/... ./connector/... ./status/...
# Everything else, once (the race packages above are not run twice).
OTHER_PKGS = $(shell $(GO) list ./... | grep -vE '/(record|config|offsets|pipeline|connector|status)(/|$$)')
TEST_TIMEOUT := 20m
# The duckdb destination hands DuckDB its rows through the driver's Arrow interface,
# which the driver compiles only with the duckdb_arrow tag: every build and test that
# links destinations/duckdb takes it (without it, that package compiles but refuses
# to load). The duckdb tag also registers the destination in the daemon.
DUCKDB_TAGS := duckdb,duckdb_arrow

# golangci-lint, pinned; `go run` builds it once into Go's cache (configuration:
# .golangci.yml).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT = $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: build build-duckdb test test-long test-short lint fuzz demo bench deps docs

build:
	$(GO) build -o bin/connectd ./cmd/connectd

# build-duckdb builds connectd with the duckdb destination (destinations/duckdb), which
# links DuckDB through cgo: it needs a C/C++ toolchain, and the binary needs glibc and
# libstdc++ where it runs (the Dockerfile's duckdb target). `build` leaves it out.
build-duckdb:
	CGO_ENABLED=1 $(GO) build -tags $(DUCKDB_TAGS) -o bin/connectd-duckdb ./cmd/connectd

# deps installs the PostgreSQL/MariaDB binaries and the versitygw S3 gateway the
# tests start, when a fresh machine lacks them.
deps:
	./scripts/ensure-deps.sh

test: deps lint
	$(GO) vet ./...
	$(GO) vet -tags $(DUCKDB_TAGS) ./connector/builtin/ ./cmd/connectd/ ./destinations/duckdb/
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(RACE_PKGS)
	$(GO) test -tags $(DUCKDB_TAGS) -timeout $(TEST_TIMEOUT) ./connector/builtin/
	$(GO) test -tags duckdb_arrow -timeout $(TEST_TIMEOUT) $(OTHER_PKGS)

# test-long runs the fault-injection suite's long form: thousands of faults
# (docs/reliability.md). FAULT_KILLS=N changes the number of kills, FAULT_SEED=S
# replays a run.
test-long: deps
	FAULT_LONG=1 $(GO) test -v -count=1 -timeout 10h ./e2e/fault/

# test-short runs the unit tests only: every test that starts a server or builds a
# binary skips itself in -short mode (internal/testenv.NeedServers).
test-short:
	$(GO) test -short -tags duckdb_arrow -timeout $(TEST_TIMEOUT) ./...

lint:
	$(GOLANGCI_LINT) run ./...

fuzz:
	./scripts/fuzz.sh 30s

# demo: a throwaway PostgreSQL and S3 server, sample data, two syncs, the lake read back.
demo: deps
	$(GO) run ./e2e/demo

bench:
	./bench/run.sh

# docs regenerates the key tables of docs/configuration.md (between its GENERATED
# markers) and docs/connectd.schema.json from the connectors' config specs; the tests
# of ./cmd/connectd, which make test runs, fail when either is stale.
docs:
	$(GO) run ./cmd/connectd docs docs/configuration.md
	$(GO) run ./cmd/connectd schema > docs/connectd.schema.json.tmp
	mv docs/connectd.schema.json.tmp docs/connectd.schema.json

# proto regenerates the plugin protocol's Go code (committed) from
# plugins/proto/connectd/v1/connectd.proto. Needs protoc (Debian: protobuf-compiler).
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
.PHONY: proto
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I plugins/proto \
		--go_out=. --go_opt=module=github.com/connectd/connectd \
		--go-grpc_out=. --go-grpc_opt=module=github.com/connectd/connectd \
		plugins/proto/connectd/v1/connectd.proto
