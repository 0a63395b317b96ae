# nvmegate: `make` builds, `make run` starts a demo target, `make test` tests.
CC ?= gcc
PKGS := liburing libnvme json-c libisal openssl fuse3 libsystemd
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -pthread \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := -pthread -luring -ljson-c -lisal -lssl -lcrypto -lfuse3 -lsystemd
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# One static archive per layer; the programs and unit tests link layers,
# and tools/check_layers.py (run by `make test`) fails the build when an
# include runs against the layering (see docs/architecture.md).
LAYERS := lib conf bdev core net fuse
lib_SRC  := $(wildcard lib/*.c)
conf_SRC := $(wildcard conf/*.c)
bdev_SRC := $(wildcard nvme/bdev/*.c nvme/bdev/pcie/*.c)
core_SRC := $(wildcard nvme/*.c)
net_SRC  := $(wildcard net/*.c)
fuse_SRC := $(wildcard fuse/*.c)
DAEMON_SRC := $(wildcard daemon/*.c)
PERF_SRC := $(wildcard tools/perf/*.c)
CLI_SRC := $(wildcard tools/cli/*.c)
BDEV_PERF_SRC := $(wildcard tools/bdev-perf/*.c) tools/perf/hist.c
HDRS := $(wildcard */*.h */*/*.h */*/*/*.h)

BUILD := build
PYTHON := /usr/bin/python3

# Objects of the release build in build/obj, of the ASan+UBSan build in
# build/asan/obj; archives beside them.
$(BUILD)/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/asan/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<
define layer_rules
$(BUILD)/lib$(1).a: $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRC))
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/asan/lib$(1).a: $$(patsubst %.c,$(BUILD)/asan/obj/%.o,$$($(1)_SRC))
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rules,$(l))))
# Upper layers first, so each archive resolves into the ones below it.
layer_libs = $(foreach l,$(2),$(BUILD)/$(1)lib$(l).a)
DAEMON_LAYERS := fuse net core conf bdev lib

.SECONDEXPANSION:
# Unit test objects are intermediate to make; keep them between runs.
.SECONDARY:
.PHONY: all asan run test unit clean deps install check-layers fuzz fuzz-build fuzz-test
all: $(BUILD)/nvmegated $(BUILD)/nvmegate-perf $(BUILD)/nvmegate $(BUILD)/nvmegate-bdev-perf

$(BUILD)/nvmegated: $(patsubst %.c,$(BUILD)/obj/%.o,$(DAEMON_SRC)) $(call layer_libs,,$(DAEMON_LAYERS))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/nvmegated: $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(DAEMON_SRC)) $(call layer_libs,asan/,$(DAEMON_LAYERS))
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# The load generator shares the NVMe/TCP framing (net/) and the runtime.
$(BUILD)/nvmegate-perf: $(patsubst %.c,$(BUILD)/obj/%.o,$(PERF_SRC)) $(call layer_libs,,net lib)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lm

# One backend on the daemon's reactors and buffer pools: the backend layer
# and the runtime, no core, no config.
$(BUILD)/nvmegate-bdev-perf: $(patsubst %.c,$(BUILD)/obj/%.o,$(BDEV_PERF_SRC)) $(call layer_libs,,bdev lib)
	$(CC) $(CFLAGS) -o $@ $^ -pthread -luring -ljson-c

$(BUILD)/nvmegate: $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC)) $(call layer_libs,,lib)
	$(CC) $(CFLAGS) -o $@ $^ -pthread -ljson-c

asan: $(BUILD)/asan/nvmegated

# C unit tests (ASan+UBSan): tests/unit/test_X.c links the layers that
# UNIT_X names; a test's own fakes take the place of the archive members
# it replaces (test_pcie's fake VFIO, test_admin's fake subsystems).
UNIT_TESTS := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_admin := core bdev lib
UNIT_stats := core lib
UNIT_snapshot := core bdev lib
UNIT_pcie  := bdev lib
UNIT_conf  := conf lib
UNIT_lib   := lib
UNIT_secret := lib
UNIT_pdu   := net lib
UNIT_tls_psk := net lib
UNIT_tls_rec := net lib
UNIT_halfopen := net lib
UNIT_tls_chan := net lib
UNIT_transport := core lib
UNIT_auth  := core bdev lib
UNIT_resv  := core bdev lib
$(BUILD)/unit/test_%: $(BUILD)/asan/obj/tests/unit/test_%.o $$(call layer_libs,asan/,$$(UNIT_$$*))
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

unit: $(foreach t,$(UNIT_TESTS),$(BUILD)/unit/test_$(t))
	@set -e; for t in $(UNIT_TESTS); do $(BUILD)/unit/test_$$t; done

# libFuzzer harnesses (tests/fuzz/fuzz_X.c, clang-15): the layers are built
# again with clang's coverage and sanitizers in build/fuzz, apart from the
# gcc builds. FUZZ_X names the layers of harness X; like a unit test, a
# harness's fakes take the place of the archive members they replace.
# Corpora live in tests/fuzz/corpus/X (seeds, kept small with -merge=1);
# what a run finds goes to build/fuzz/corpus/X.
FUZZ_CC := clang-15
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -pthread \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(FUZZ_SAN)
FUZZERS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_pdu     := net lib
FUZZ_admin   := core bdev lib
FUZZ_connect := core bdev lib
FUZZ_conf    := conf lib
FUZZ_auth    := core bdev lib
FUZZ_secret  := net lib
FUZZ_tlsrec  := net lib
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 10
FUZZ_RUN := -max_len=16384 -print_final_stats=1 -rss_limit_mb=1024 -timeout=10

$(BUILD)/fuzz/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(foreach l,$(LAYERS),$(eval $(BUILD)/fuzz/lib$(l).a: \
	$$(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$$($(l)_SRC)) ; rm -f $$@ && ar rcs $$@ $$^))
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $$(call layer_libs,fuzz/,$$(FUZZ_$$*))
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(foreach f,$(FUZZERS),$(BUILD)/fuzz/fuzz_$(f))

# Each harness for FUZZ_SECONDS, one after the other, from its corpus.
fuzz: deps fuzz-build
	@set -e; for f in $(FUZZERS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$f; \
	  echo "== fuzz_$$f ($(FUZZ_SECONDS) s)"; \
	  $(BUILD)/fuzz/fuzz_$$f $(FUZZ_RUN) -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus/$$f tests/fuzz/corpus/$$f; \
	done

# `make test`: every corpus input once, then FUZZ_TEST_SECONDS of fresh inputs.
fuzz-test: fuzz-build
	@set -e; for f in $(FUZZERS); do \
	  rm -rf $(BUILD)/fuzz/fresh/$$f && mkdir -p $(BUILD)/fuzz/fresh/$$f; \
	  echo "== fuzz_$$f: corpus, then $(FUZZ_TEST_SECONDS) s"; \
	  log=$(BUILD)/fuzz/fresh/$$f.log; \
	  $(BUILD)/fuzz/fuzz_$$f $(FUZZ_RUN) -runs=0 tests/fuzz/corpus/$$f >$$log 2>&1 || \
	    { tail -n 40 $$log; exit 1; }; \
	  $(BUILD)/fuzz/fuzz_$$f $(FUZZ_RUN) -max_total_time=$(FUZZ_TEST_SECONDS) \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/fresh/$$f tests/fuzz/corpus/$$f >$$log 2>&1 || \
	    { tail -n 40 $$log; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units)' $$log || true; \
	done

# Includes must follow the layering (docs/architecture.md).
check-layers:
	$(PYTHON) tools/check_layers.py

# Installs what building and testing need (Debian 12), only when missing.
DEB_PKGS := gcc make pkg-config liburing-dev libnvme-dev libjson-c-dev libisal-dev \
            libssl-dev libfuse3-dev fuse3 fio python3 python3-pytest tshark \
            qemu-system-x86 libsystemd-dev systemd clang-15 libfuzzer-15-dev iperf3
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing packages: $$missing (run as root or install them)"; exit 1; fi; \
	fi

RUN_DIR := run
run: deps all
	@mkdir -p $(RUN_DIR)
	@test -e $(RUN_DIR)/ns1.img || truncate -s 1G $(RUN_DIR)/ns1.img
	@sed "s|@IMG@|$(CURDIR)/$(RUN_DIR)/ns1.img|" conf/example.json > $(RUN_DIR)/nvmegate.json
	@echo "config: $(RUN_DIR)/nvmegate.json"
	@echo "from a Linux host:"
	@echo "  nvme discover -t tcp -a 127.0.0.1 -s 4420"
	@echo "  nvme connect -t tcp -a 127.0.0.1 -s 4420 -n nqn.2026-11.io.nvmegate:demo"
	@echo "control it: $(BUILD)/nvmegate -s $(RUN_DIR)/control.sock status|list|stats"
	@# The FUSE mount (run/fuse) needs /dev/fuse and root; without them the
	@# demo runs NVMe/TCP only rather than failing to start.
	@if [ -w /dev/fuse ]; then \
	  mkdir -p $(RUN_DIR)/fuse; \
	  echo "the same namespaces as files (FUSE):"; \
	  echo "  $(CURDIR)/$(RUN_DIR)/fuse/demo/n1 and n2   e.g. losetup -f --show $(RUN_DIR)/fuse/demo/n1"; \
	else \
	  $(PYTHON) -c 'import json,sys; c=json.load(open(sys.argv[1])); c["nvmegate"].pop("fuse"); json.dump(c, open(sys.argv[1], "w"), indent=2)' $(RUN_DIR)/nvmegate.json; \
	  echo "no writable /dev/fuse: starting without the FUSE mount"; \
	fi
	exec $(BUILD)/nvmegated -c $(RUN_DIR)/nvmegate.json

test: deps check-layers all asan unit fuzz-test
	NVMEGATED=$(CURDIR)/$(BUILD)/asan/nvmegated NVMEGATE_PERF=$(CURDIR)/$(BUILD)/nvmegate-perf \
	  NVMEGATE_CLI=$(CURDIR)/$(BUILD)/nvmegate NVMEGATE_BDEV_PERF=$(CURDIR)/$(BUILD)/nvmegate-bdev-perf \
	  $(PYTHON) -m pytest -q tests

# Installs the daemon, the CLI, the systemd unit, a default config (kept if
# one exists) and the man pages. DESTDIR for staging, PREFIX for the tree.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: $(BUILD)/nvmegated $(BUILD)/nvmegate
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(SYSCONFDIR)/nvmegate
	install -m 0755 $(BUILD)/nvmegated $(BUILD)/nvmegate $(DESTDIR)$(SBINDIR)/
	sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/etc/nvmegate/|$(SYSCONFDIR)/nvmegate/|g' \
	  systemd/nvmegated.service > $(DESTDIR)$(UNITDIR)/nvmegated.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/nvmegated.service
	test -e $(DESTDIR)$(SYSCONFDIR)/nvmegate/nvmegate.json || \
	  install -m 0640 conf/nvmegate.json $(DESTDIR)$(SYSCONFDIR)/nvmegate/nvmegate.json
	install -m 0644 man/nvmegated.8 man/nvmegate.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -rf $(BUILD)

# ---- The core of the FUSE suite in the Linux 6.1 guest of tests/vm
# (tests/test_fuse_vm.py, also run by `make test`).
.PHONY: fuse-vm-test
fuse-vm-test: asan
	NVMEGATED=$(CURDIR)/$(BUILD)/asan/nvmegated \
	  $(PYTHON) -m pytest -q tests/test_fuse_vm.py

# ---- FUSE front end vs the backing file vs qemu-storage-daemon's FUSE
# export (bench/fuse_bench.py). A benchmark, not a test; needs root.
BENCH_FUSE_PKGS := fio qemu-system-common
.PHONY: bench-fuse
bench-fuse: deps $(BUILD)/nvmegated
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_FUSE_PKGS)"
	$(PYTHON) bench/fuse_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated

# ---- A real Linux NVMe/TCP host in a QEMU guest (tests/vm/, bench/vm_bench.py).
# Host needs qemu-system-x86; the guest's Debian packages are downloaded once
# into /var/cache/nvmegate-vm (NVMEGATE_VM_CACHE). `make test` runs the VM
# suite too (tests/vm/test_vm_linux_host.py, with the ASan daemon).
.PHONY: vm-image vm-test vm-test-trixie vm-test-hostile bench-vm bench-pcie
vm-image: $(BUILD)/nvmegated
	$(PYTHON) tests/vm/vmlib.py $(CURDIR)/$(BUILD)/nvmegated

vm-test: $(BUILD)/nvmegated
	NVMEGATED_VM=$(CURDIR)/$(BUILD)/nvmegated $(PYTHON) -m pytest -q tests/vm

# only the Debian 13 / Linux 6.12 guest (TLS, DH-HMAC-CHAP), ASan daemon
vm-test-trixie: asan
	NVMEGATED_VM=$(CURDIR)/$(BUILD)/asan/nvmegated $(PYTHON) -m pytest -q tests/vm/test_vm_trixie.py

# Hostile networks (netem, link down/flaps, RSTs) in the 6.1 guest, ~5 min.
vm-test-hostile: asan
	NVMEGATED_VM=$(CURDIR)/$(BUILD)/asan/nvmegated $(PYTHON) -m pytest -q tests/vm/test_vm_hostile.py

bench-vm: $(BUILD)/nvmegated
	$(PYTHON) bench/vm_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated

# ---- The userspace PCIe driver vs the kernel's nvme driver on QEMU's NVMe
# controller in the guest (bench/pcie_bench.py; tests/vm/test_vm_pcie.py).
bench-pcie: $(BUILD)/nvmegated $(BUILD)/nvmegate-bdev-perf
	$(PYTHON) bench/pcie_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --bdev-perf $(CURDIR)/$(BUILD)/nvmegate-bdev-perf

# ---- What TLS costs: plain NVMe/TCP vs TLS 1.3 (PSK), alternating in one
# run, nvmegate-perf against the release build (bench/tls_bench.py); then the
# Linux 6.12 host in the trixie guest against nvmegated and the kernel's
# nvmet-tcp, TLS and plain (bench/vm_bench.py --kind trixie --tls). One table.
bench-tls: $(BUILD)/nvmegated $(BUILD)/nvmegate-perf
	$(PYTHON) bench/tls_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --perf $(CURDIR)/$(BUILD)/nvmegate-perf

# ---- Many hosts for long: 64 hosts x 4 queues of verified mixed I/O for
# 30 minutes while namespaces and hosts come and go (bench/soak.py).
.PHONY: bench-soak
bench-soak: $(BUILD)/nvmegated $(BUILD)/nvmegate-perf $(BUILD)/nvmegate
	$(PYTHON) bench/soak.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --perf $(CURDIR)/$(BUILD)/nvmegate-perf --cli $(CURDIR)/$(BUILD)/nvmegate

# ---- QD1 latency: nvmegated's 4 KiB QD1 read vs the machine's floor, a
# busy-polling loopback TCP ping-pong with the same sizes (bench/pingpong.c),
# and the daemon's CPU time while idle (bench/latency.py). Release build.
$(BUILD)/pingpong: bench/pingpong.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

.PHONY: bench-latency
bench-latency: $(BUILD)/nvmegated $(BUILD)/nvmegate-perf $(BUILD)/pingpong
	$(PYTHON) bench/latency.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --perf $(CURDIR)/$(BUILD)/nvmegate-perf --pingpong $(CURDIR)/$(BUILD)/pingpong

# ---- Issue 14's speed table: QD1 latency vs the ping-pong floor and idle
# CPU, one reactor's throughput vs iperf3, the 6.1 guest vs the kernel's
# nvmet-tcp, FUSE (io_uring / libfuse / minimal server /
# qemu-storage-daemon); every row a ratio measured side by side in one run
# (bench/bench.py). Release build; the FUSE part needs root.
# BENCH_ARGS="--quick --skip-vm --skip-fuse --rounds N --json FILE".
BENCH_PKGS := fio iperf3 qemu-system-common qemu-system-x86
$(BUILD)/fuse_ram_server: bench/fuse_ram_server.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(shell pkg-config --cflags --libs fuse3)

.PHONY: bench
bench: deps $(BUILD)/nvmegated $(BUILD)/nvmegate-perf $(BUILD)/pingpong $(BUILD)/fuse_ram_server
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_PKGS)"
	$(PYTHON) bench/bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --perf $(CURDIR)/$(BUILD)/nvmegate-perf --pingpong $(CURDIR)/$(BUILD)/pingpong \
	  --minimal $(CURDIR)/$(BUILD)/fuse_ram_server $(BENCH_ARGS)
