# distvm: top-level build.  See README.md.
#
#   make          set up (first time), stage QEMU, build qemu-system-x86_64,
#                 the qtests and the guest images
#   make check    all of that, then every test
#   make demo     all of that, then Linux on a 3-node cluster with vCPU moves
#   make bench    benchmarks under bench/

SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

TOP := $(CURDIR)
B := $(TOP)/build
QEMU_BUILD := $(B)/qemu
STAGED := $(B)/src
GUESTS := $(B)/guests
NINJA ?= ninja

# Upstream qtests that cover what patches/ touches (build system, TCG
# accelerator class, QAPI schema, HMP and -accel options).
UPSTREAM_QTESTS ?= qmp-test qmp-cmd-test test-hmp machine-none-test \
                   readconfig-test cpu-plug-test

QTEST_TARGETS := tests/qtest/distvm-test tests/qtest/distvm-ram-test tests/qtest/distvm-move-test tests/qtest/distvm-elastic-test tests/qtest/distvm-linux-test tests/qtest/distvm-sequence-test tests/qtest/distvm-epoch-test $(addprefix tests/qtest/,$(UPSTREAM_QTESTS))

-include $(B)/config.mk

$(B)/config.mk: configure scripts/setup-host.sh scripts/fetch-qemu.sh
	./configure

# Stage the QEMU tree again whenever the patches or the upstream tree change.
$(B)/.staged: $(B)/config.mk $(wildcard patches/*) scripts/stage-qemu.sh $(B)/upstream/version
	scripts/stage-qemu.sh $(B)/upstream/tree $(STAGED) $(TOP)
	@touch $@

$(QEMU_BUILD)/.configured: $(B)/.staged $(B)/config.mk
	@mkdir -p $(QEMU_BUILD)
	@echo "distvm: configuring $(QEMU_SOURCE)"
	cd $(QEMU_BUILD) && $(STAGED)/configure $(QEMU_CONFIGURE_FLAGS) > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }
	@touch $@

.PHONY: all qemu guests check check-long stress check-unit check-distvm check-upstream demo bench clean distclean

all: qemu guests

# Our own files are linked into the staged tree; relinking picks up files
# added since the last staging and costs nothing otherwise.
qemu: $(QEMU_BUILD)/.configured
	@scripts/stage-qemu.sh --link-only $(B)/upstream/tree $(STAGED) $(TOP)
	CCACHE_BASEDIR=$(TOP) CCACHE_NOHASHDIR=1 \
	    $(NINJA) -C $(QEMU_BUILD) qemu-system-x86_64 $(QTEST_TARGETS)
	@scripts/link-firmware.sh $(QEMU_BUILD)
	@ln -sfn qemu/qemu-system-x86_64 $(B)/qemu-system-x86_64

guests:
	@$(MAKE) --no-print-directory -f tests/qtest/distvm/guests.mk TOP=$(TOP) OUT=$(GUESTS)

# Seconds the wire decoder's fuzz target runs in make check.
FUZZ_SECONDS ?= 60
UNIT := $(MAKE) --no-print-directory -f tests/unit/distvm/unit.mk TOP=$(TOP) B=$(B) \
        FUZZ_SECONDS=$(FUZZ_SECONDS)

check: all
	$(UNIT) run
	scripts/run-tests.sh $(B) $(UPSTREAM_QTESTS)

# Tests too long for make check: the Linux guest on 3 nodes in network
# namespaces over TCP and TLS, the same with node 2 or home cut off by a
# partition during its workload (root, iproute2 and certtool; minutes),
# on 3 nodes with a node other than home killed at random, with the node
# that serves a queue pair killed and the pair following its vCPU after
# the takeover, with home killed as it runs a multi-queue card and serves
# a pair of it, with the node that runs a network card killed or its tap
# taken down (the card goes home), and on 2 nodes with -cpu max and the
# LAPICs in x2APIC mode.
check-long: all
	cd $(QEMU_BUILD) && DISTVM_LONG=1 DISTVM_GUEST_DIR=$(GUESTS) \
	    QTEST_QEMU_BINARY=./qemu-system-x86_64 \
	    tests/qtest/distvm-linux-test -p /x86_64/distvm/linux/3-nodes-netns-tls \
	    -p /x86_64/distvm/linux/3-nodes-partition \
	    -p /x86_64/distvm/linux/3-nodes-partition-home \
	    -p /x86_64/distvm/linux/3-nodes-kill \
	    -p /x86_64/distvm/linux/3-nodes-kill-pair-follow \
	    -p /x86_64/distvm/linux/3-nodes-kill-pair-home \
	    -p /x86_64/distvm/linux/3-nodes-kill-card \
	    -p /x86_64/distvm/linux/3-nodes-card-path \
	    -p /x86_64/distvm/linux/2-nodes-cpu-max

# Each case of a node lost while the guest runs, 10 times (make check
# runs each once): tests/stress/node-loss.sh.
STRESS_REPEAT ?= 10
stress: all
	tests/stress/node-loss.sh $(B) $(STRESS_REPEAT)

check-unit: qemu
	$(UNIT) run

check-distvm: all
	scripts/run-tests.sh --distvm-only $(B)

check-upstream: all
	scripts/run-tests.sh --upstream-only $(B) $(UPSTREAM_QTESTS)

demo: all
	scripts/demo.sh $(B)

$(B)/bench/%: bench/%.c
	@mkdir -p $(B)/bench
	$(CC) -O2 -Wall -pthread -o $@ $<

bench: all $(B)/bench/socket-rtt $(B)/bench/uffd-ops
	python3 bench/page-faults.py $(B) --transport unix
	python3 bench/page-faults.py $(B) --transport tcp
	python3 bench/page-faults.py $(B) --transport tcp --tls
	python3 bench/vcpu-moves.py $(B) --moves 200 --migrations 5
	python3 bench/single-node.py $(B)
	python3 bench/elastic.py $(B)
	python3 bench/linux-nodes.py $(B)
	python3 bench/io-nodes.py $(B)
	python3 bench/affinity.py $(B)

clean:
	rm -rf $(QEMU_BUILD) $(GUESTS) $(STAGED) $(B)/.staged $(B)/qemu-system-x86_64

distclean:
	rm -rf $(B)
