# Kommerce — the README's commands. Every target that needs a server first runs scripts/deps.sh,
# which reuses, starts or installs PostgreSQL, Redis and Apache Kafka (scripts/kafka.sh).

CARGO      ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN        := $(TARGET_DIR)/debug
NEXTEST    := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help deps control-plane api-docs web web-test openapi build migrate up test test-rust test-faults lint fmt bench images kind-up kind-down

help:
	@echo "make up     the shop with demo data: every service + the storefront and router on 127.0.0.1:8080 (Ctrl-C stops)"
	@echo "make test   start the real dependencies, then run every test"
	@echo "make lint   rustfmt check and clippy with warnings denied"
	@echo "make bench  the stock strategies and the whole shop's checkouts (release build) -> docs/bench/"
	@echo "make openapi  regenerate docs/openapi/ from the code"
	@echo "make test-faults  the full fault suite -> docs/reliability/last-run.md"
	@echo "make images  container images with podman (release build) -> ~/.cache/kommerce/images/*.tar"
	@echo "make kind-up / kind-down  Kommerce on a local kind cluster (kind-config.yaml)"

deps:
	@bash scripts/deps.sh

# The operator's tests need a Kubernetes control plane (built once from Go modules, cached);
# heal: started afresh if it runs but no longer makes pods Ready.
control-plane:
	@bash scripts/control-plane.sh heal

# The API reference's offline assets (swagger-ui-dist via npm, pinned by its lock file).
api-docs:
	@bash scripts/api-docs.sh

# The storefront (web/): npm ci when its lock file changed, vite build when an input did.
web:
	@bash scripts/web.sh

# ... and its unit tests (vitest) and its size budget.
web-test:
	@bash scripts/web.sh test

openapi:
	$(CARGO) run --locked -p kommerce -- openapi --out docs/openapi

build:
	$(CARGO) build --locked -p kommerce -p kommerce-user -p kommerce-item -p kommerce-order -p kommerce-pay -p kommerce-review -p kommerce-image

migrate: deps build
	$(BIN)/kommerce migrate

# kommerce up creates the databases and applies the migrations before it starts the services;
# --demo seeds demo data on the first run and prints the shop's URL and the demo logins.
up: deps api-docs web build
	$(BIN)/kommerce up --demo

# The services' binaries are built first: the platform tests run each as its own process.
test: deps control-plane api-docs web-test build test-rust

test-rust:
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --locked --workspace --all-features --no-fail-fast
	$(CARGO) test --locked --workspace --all-features --doc
else
	$(CARGO) test --locked --workspace --all-features --no-fail-fast
endif

# The whole fault suite (KOMMERCE_FAULTS=full): every fault several times under load, the
# shared PostgreSQL, Redis and Kafka restarted, mixed faults; the table goes to
# docs/reliability/last-run.md. Run it alone: it restarts engines other tests use.
# A smoke of it (no engine restarts) runs inside `make test`. Release build, as the platform
# runs for its users: how fast a backlog drains after a broker restart depends on it.
test-faults: deps
	$(CARGO) build --release --locked --bins
	mkdir -p docs/reliability
	KOMMERCE_FAULTS=full KOMMERCE_FAULTS_OUT=$(CURDIR)/docs/reliability/last-run.md \
		$(CARGO) test --release --locked -p kommerce-e2e --test faults -- --nocapture

# Container images of every service, the operator and the CLI, built with podman from the
# release binaries on a base made here (no registry); docker-archive tars for kind.
images:
	bash scripts/images.sh

# Kommerce on a local kind cluster: tools checked, cluster, images loaded, ingress, the chart.
kind-up:
	bash scripts/kind.sh up

kind-down:
	bash scripts/kind.sh down

# Both benchmarks on the release build, each side by side with its baselines in one run:
# the stock strategies on one hot SKU, and the whole shop's checkouts (every service its own
# process) against the machine's ceilings -> docs/bench/{stock,checkout}.{json,svg}.
bench: deps
	$(CARGO) build --locked --release -p kommerce-user -p kommerce-item -p kommerce-order -p kommerce-pay -p kommerce-review -p kommerce-image
	$(CARGO) build --locked --release -p kommerce --features bench
	$(TARGET_DIR)/release/kommerce bench stock --out docs/bench
	$(TARGET_DIR)/release/kommerce bench checkout --out docs/bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all
