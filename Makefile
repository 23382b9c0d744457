# tokenstatus front door. On a fresh Debian 12 (bookworm) machine, as root or with sudo:
#   make run    install what is missing, build, start Redis (data in var/redis) and the server
#   make test   install what is missing, build, run every test against a throwaway Redis
# Other targets: deps, build, bench, chaos, deploy-test, fuzz, test-sanitize, package, lint, fmt,
# clean.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# Extra configure arguments, e.g. CMAKE_ARGS=-DTOKENSTATUS_WERROR=ON (CI).
CMAKE_ARGS ?=
BUF := var/tools/node_modules/.bin/buf
CXX_SOURCES = $(shell find core server client tests examples -name '*.h' -o -name '*.cc' 2>/dev/null)

export BUILD_DIR CMAKE_ARGS

# Prerequisites run in the order listed (deps before build before the rest).
.NOTPARALLEL:
.PHONY: deps build run test test-sanitize package bench chaos deploy-test fuzz lint fmt clean

deps:
	deploy/install-deps.sh

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: deps build
	deploy/run-local.sh

test: deps build
	tests/run_tests.sh

# Everything built with ASan + UBSan in build-sanitize (a second tree, ~15 minutes on 2 cores),
# then the unit, contract and integration tests under them.
test-sanitize: deps
	tests/run_sanitized_tests.sh

# Debian packages in $(BUILD_DIR) (CPack): tokenstatus-server, tokenstatus-tools,
# libtokenstatus-client-dev; then their check (tests/packaging/check_debs.sh).
package: deps build
	cd $(BUILD_DIR) && cpack -G DEB
	tests/packaging/check_debs.sh $(BUILD_DIR)

bench: deps build
	tests/bench/run_bench.sh

# Every fault-injection scenario at full length (tests/chaos/README.md), a few minutes; figures in
# var/chaos/figures.md. make test runs short versions of two of them.
chaos: deps build
	tests/chaos/run_chaos.sh

# The deploy files for real (deploy/test/run_deploy_test.sh, about 10 minutes the first time):
# podman builds the images, podman-compose runs the stack and it is checked over TLS, the
# Kubernetes overlays are rendered and validated. Installs podman and the compose tools.
deploy-test: deps build
	deploy/install-deps.sh --deploy
	deploy/test/run_deploy_test.sh

# libFuzzer targets built with clang in build-fuzz, FUZZ_SECONDS (60) each; make test runs them
# for 10 s each.
fuzz: deps
	tests/fuzz/run_fuzz.sh

lint: deps
	$(BUF) lint
	scripts/check_includes.sh
	@echo "clang-format --dry-run -Werror <C++ sources under core/ server/ client/ tests/ examples/>"
	@clang-format --dry-run -Werror $(CXX_SOURCES)

fmt:
	@echo "clang-format -i <C++ sources under core/ server/ client/ tests/ examples/>"
	@clang-format -i $(CXX_SOURCES)

# Removes build outputs, benchmark and chaos results; keeps var/redis (the data of make run) and
# var/tools.
clean:
	rm -rf $(BUILD_DIR) build-fuzz build-sanitize var/bench var/chaos var/fuzz var/deploy-test
