# Thin wrapper over Meson for the common tasks. Meson does the real work; everything here can be
# run by hand (see docs/building.md).
#
#   make run          install what is missing, build and run the quick-start example (only it)
#   make test         build, run every test (meson test), then the out-of-tree consumer check, the
#                     check that every installed header compiles alone, and FUZZ_SECONDS (30) of
#                     fuzzing the wire decoder (build-fuzz/, clang)
#   make test-asan    AddressSanitizer + UBSan build (build-asan/): builds and runs suites unit, sim
#   make bench        build and run every benchmark program under build/bench
#   make soak         long simulation run: dengine-sim --seeds 100000
#   make stress       the integration suite 20 times while two busy loads compete for the cores
#   make format       clang-format -i over our sources;  make format-check: check only
#   make lint         format-check + clang-tidy (warnings are errors)
#   make clean        remove build/, build-asan/ and build-fuzz/
#
# CI=true (set by CI) configures with -Dwerror=true. JOBS=N changes the parallelism (default 2).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
# Extra `meson setup` options for both build dirs, e.g. MESON_OPTIONS='-Dlmdb=disabled'.
MESON_OPTIONS ?=
# Debug information: line tables only (-g1: file, line and function in backtraces and sanitizer
# reports, no variables). Full -g made a translation unit take about 1.6 times as long to compile
# (test/sim/run_kv.cpp: 93 s against 58 s), and the build is most of CI's time budget. Asserts
# stay on: b_ndebug=if-release leaves them in a build that is not buildtype=release.
# For a debugger session: DEBUG_OPTIONS=-Ddebug=true on a fresh build directory.
DEBUG_OPTIONS ?= -Ddebug=false -Dcpp_args=-g1
# The sanitizer build runs the simulation suite with fewer seeds than the normal build (which runs
# the full sim_seeds default): ASan + UBSan make it several times slower, and CI has a time budget.
# It is built at -O1, as the ASan documentation advises: compiling under ASan at -O2 took 1.6
# times as long (test/unit/kv/kv_txn_test.cpp: 100 s against 61 s, both -g1).
ASAN_MESON_OPTIONS ?= -Dsim_seeds=250 -Doptimization=1
# Only these suites run under the sanitizers, and only their programs are built in $(ASAN_BUILD).
ASAN_SUITES ?= unit sim
SOAK_SEEDS ?= 100000
# How long `make test` fuzzes the peer wire decoder (scripts/fuzz-wire, clang + libFuzzer).
FUZZ_SECONDS ?= 30

ifeq ($(CI),true)
  WERROR := -Dwerror=true
endif
# Succeeds when build dir $1 already has werror on (so CI does not reconfigure on every target).
werror_on = python3 -c 'import json, sys; sys.exit(not any(o["name"] == "werror" and o["value"] \
  for o in json.load(open(sys.argv[1]))))' $(1)/meson-info/intro-buildoptions.json 2>/dev/null

.PHONY: deps configure build run test test-asan bench soak stress format format-check lint clean

# Installs the Debian packages only when one is missing: `setup --check` asks dpkg (milliseconds),
# so on a prepared machine this never calls apt-get.
deps:
	@scripts/setup --check >/dev/null 2>&1 || scripts/setup

# Configures $(BUILD) if it is not configured yet; in CI, makes sure werror is on even when the
# directory was configured earlier without it.
configure: deps
	@if [[ ! -f $(BUILD)/meson-private/coredata.dat ]]; then \
	  meson setup $(BUILD) $(DEBUG_OPTIONS) $(WERROR) $(MESON_OPTIONS); \
	elif [[ -n "$(WERROR)" ]] && ! $(call werror_on,$(BUILD)); then \
	  meson configure $(BUILD) $(WERROR); \
	fi

build: configure
	meson compile -C $(BUILD) -j $(JOBS)

# Builds only the quick start (and what it needs), not every test: `make test` builds the rest.
run: configure
	@if ! meson introspect $(BUILD) --targets | python3 -c 'import json, sys; \
	  sys.exit(not any(t["name"] == "quickstart" for t in json.load(sys.stdin)))'; then \
	  echo "make run: no quickstart target in $(BUILD) (is it in examples/meson.build?)" >&2; \
	  exit 1; \
	fi
	meson compile -C $(BUILD) -j $(JOBS) quickstart
	$(BUILD)/examples/quickstart

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes $(JOBS)
	scripts/check-consumer $(BUILD)
	JOBS=$(JOBS) scripts/check-headers $(BUILD)
	JOBS=$(JOBS) scripts/fuzz-wire $(FUZZ_SECONDS)

test-asan: deps
	@if [[ ! -f $(ASAN_BUILD)/meson-private/coredata.dat ]]; then \
	  meson setup $(ASAN_BUILD) --buildtype=debugoptimized $(DEBUG_OPTIONS) \
	    -Db_sanitize=address,undefined -Db_lundef=false \
	    $(WERROR) $(MESON_OPTIONS) $(ASAN_MESON_OPTIONS); \
	elif [[ -n "$(WERROR)" ]] && ! $(call werror_on,$(ASAN_BUILD)); then \
	  meson configure $(ASAN_BUILD) $(WERROR); \
	fi
	@ninja -C $(ASAN_BUILD) build.ninja >/dev/null  # regenerate first if a meson.build changed
	@targets=$$(scripts/suite-targets $(ASAN_BUILD) $(ASAN_SUITES)); \
	if [[ -z "$$targets" ]]; then \
	  echo "make test-asan: no tests in suites: $(ASAN_SUITES)" >&2; exit 1; \
	fi; \
	echo "ninja -C $(ASAN_BUILD) -j $(JOBS)" $$targets; \
	ninja -C $(ASAN_BUILD) -j $(JOBS) $$targets
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  meson test -C $(ASAN_BUILD) --no-rebuild --print-errorlogs --num-processes $(JOBS) \
	  $(foreach s,$(ASAN_SUITES),--suite $(s))

# Runs every executable target defined under bench/ (introspected, so new ones need no change).
bench: build
	@progs=$$(scripts/list-targets $(BUILD) bench); \
	if [[ -z "$$progs" ]]; then \
	  echo "make bench: no benchmark programs are defined under bench/ yet;" \
	       "$(BUILD)/bench holds: $$(ls -A $(BUILD)/bench 2>/dev/null | tr '\n' ' ' || true)"; \
	  exit 0; \
	fi; \
	for p in $$progs; do echo "==> $$p"; "$$p"; done

soak: build
	@if [[ ! -x $(BUILD)/test/sim/dengine-sim ]]; then \
	  echo "make soak: $(BUILD)/test/sim/dengine-sim was not built (is it in test/sim/meson.build?)" >&2; \
	  exit 1; \
	fi
	$(BUILD)/test/sim/dengine-sim --seeds $(SOAK_SEEDS)

stress: build
	scripts/stress-integration 20 2

format:
	scripts/format

format-check:
	scripts/format --check

# clang-tidy over every .cpp of ours in the compilation database (after a build, so that generated
# headers exist), diagnostics from our own headers included. Checks and WarningsAsErrors come from
# .clang-tidy. Runs even when format-check fails, so one run reports both.
# clang-tidy matches the header filter against a header's name as the compiler found it: the
# compile commands run in $(BUILD) with -I../include etc., so our headers appear as
# `../include/...` or `$(CURDIR)/$(BUILD)/../include/...`; subprojects and /usr/include do not match.
TIDY_DIRS := (include|backends|statemachines|engine|server|tools|test|bench|examples)
TIDY_HEADERS := ^(\.\./|$(CURDIR)/($(BUILD)/\.\./)?)$(TIDY_DIRS)/
TIDY_FILES := ^$(CURDIR)/(?!subprojects/|build)
lint: build
	@status=0; \
	scripts/format --check || status=1; \
	if command -v run-clang-tidy-14 >/dev/null 2>&1; then \
	  tidy=(run-clang-tidy-14 -clang-tidy-binary clang-tidy-14); \
	else \
	  tidy=(run-clang-tidy); \
	fi; \
	start=$$(date +%s); \
	if "$${tidy[@]}" -p $(BUILD) -j $(JOBS) -quiet -header-filter '$(TIDY_HEADERS)' \
	     -extra-arg=-Wno-unknown-warning-option '$(TIDY_FILES)' >$(BUILD)/clang-tidy.log 2>&1; then \
	  echo "lint: clang-tidy found nothing in $$(grep -c '^clang-tidy' $(BUILD)/clang-tidy.log) files" \
	       "($$(( $$(date +%s) - start ))s)"; \
	else \
	  sed 's/\x1b\[[0-9;]*m//g' $(BUILD)/clang-tidy.log \
	    | grep -v -e '^clang-tidy' -e '^[0-9]* warnings\? .*generated' -e '^Suppressed' >&2 || true; \
	  echo "lint: clang-tidy found problems ($$(( $$(date +%s) - start ))s; log: $(BUILD)/clang-tidy.log)" >&2; \
	  status=1; \
	fi; \
	exit $$status

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
