# nvmegate: `make` builds, `make run` starts a demo target, `make test` tests.
CC ?= gcc
PKGS := liburing libnvme json-c libisal openssl fuse3 libsystemd
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -pthread \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := -pthread -luring -ljson-c -lisal -lcrypto -lfuse3 -lsystemd
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

DAEMON_SRC := $(wildcard daemon/*.c conf/*.c nvme/*.c nvme/pcie/*.c net/*.c fuse/*.c)
PERF_SRC := $(wildcard tools/perf/*.c)
CLI_SRC := $(wildcard tools/cli/*.c)
# The backends with the reactor and buffer pool they run on, without the
# target core or front ends (config.c only for the path syntax).
BDEV_PERF_SRC := $(wildcard tools/bdev-perf/*.c) tools/perf/hist.c daemon/reactor.c \
                 daemon/bufpool.c daemon/log.c daemon/devreg.c conf/config.c nvme/bdev.c \
                 nvme/bdev_file.c nvme/bdev_mem.c nvme/bdev_pcie.c nvme/pcie/ctrlr.c \
                 nvme/pcie/qpair.c nvme/pcie/reset.c nvme/pcie/dma.c nvme/pcie/vfio.c
HDRS := $(wildcard */*.h */*/*.h)

BUILD := build
PYTHON := /usr/bin/python3

.PHONY: all asan run test unit clean deps install
all: $(BUILD)/nvmegated $(BUILD)/nvmegate-perf $(BUILD)/nvmegate $(BUILD)/nvmegate-bdev-perf

$(BUILD)/nvmegated: $(DAEMON_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(DAEMON_SRC) $(LDLIBS)

$(BUILD)/asan/nvmegated: $(DAEMON_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(DAEMON_SRC) $(LDLIBS)

$(BUILD)/nvmegate-perf: $(PERF_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(PERF_SRC) $(LDLIBS) -lm

$(BUILD)/nvmegate-bdev-perf: $(BDEV_PERF_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(BDEV_PERF_SRC) -pthread -luring -ljson-c

$(BUILD)/nvmegate: $(CLI_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(CLI_SRC) -ljson-c

asan: $(BUILD)/asan/nvmegated

# C unit tests: each links the files it tests plus its own fakes.
UNIT_ADMIN_SRC := tests/unit/test_admin.c nvme/admin.c nvme/identify.c nvme/log_page.c \
                  nvme/features.c nvme/discovery.c nvme/ident.c
$(BUILD)/unit/test_admin: $(UNIT_ADMIN_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(UNIT_ADMIN_SRC) $(LDLIBS)

$(BUILD)/unit/test_stats: tests/unit/test_stats.c nvme/stats.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ tests/unit/test_stats.c nvme/stats.c

# The PCIe driver against a software model of a controller (its fake VFIO
# replaces nvme/pcie/vfio.c).
UNIT_PCIE_SRC := tests/unit/test_pcie.c daemon/reactor.c daemon/bufpool.c daemon/log.c \
                 daemon/devreg.c nvme/bdev_pcie.c nvme/pcie/ctrlr.c nvme/pcie/qpair.c \
                 nvme/pcie/reset.c nvme/pcie/dma.c
$(BUILD)/unit/test_pcie: $(UNIT_PCIE_SRC) $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(UNIT_PCIE_SRC) $(LDLIBS)

unit: $(BUILD)/unit/test_admin $(BUILD)/unit/test_stats $(BUILD)/unit/test_pcie
	$(BUILD)/unit/test_admin
	$(BUILD)/unit/test_stats
	$(BUILD)/unit/test_pcie

# Installs what building and testing need (Debian 12), only when missing.
DEB_PKGS := gcc make pkg-config liburing-dev libnvme-dev libjson-c-dev libisal-dev \
            libssl-dev libfuse3-dev fuse3 fio python3 python3-pytest tshark \
            qemu-system-x86 libsystemd-dev systemd
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

test: deps all asan unit
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
.PHONY: vm-image vm-test bench-vm bench-pcie
vm-image: $(BUILD)/nvmegated
	$(PYTHON) tests/vm/vmlib.py $(CURDIR)/$(BUILD)/nvmegated

vm-test: $(BUILD)/nvmegated
	NVMEGATED_VM=$(CURDIR)/$(BUILD)/nvmegated $(PYTHON) -m pytest -q tests/vm

bench-vm: $(BUILD)/nvmegated
	$(PYTHON) bench/vm_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated

# ---- The userspace PCIe driver vs the kernel's nvme driver on QEMU's NVMe
# controller in the guest (bench/pcie_bench.py; tests/vm/test_vm_pcie.py).
bench-pcie: $(BUILD)/nvmegated $(BUILD)/nvmegate-bdev-perf
	$(PYTHON) bench/pcie_bench.py --daemon $(CURDIR)/$(BUILD)/nvmegated \
	  --bdev-perf $(CURDIR)/$(BUILD)/nvmegate-bdev-perf
