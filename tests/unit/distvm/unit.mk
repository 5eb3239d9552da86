# distvm wire protocol: unit test and libFuzzer target, and the unit test
# of the parity of redundancy=parity, built outside QEMU's meson build
# against the already built tree in $(B)/qemu.
#
#   make -f tests/unit/distvm/unit.mk TOP=<repo> B=<repo>/build run
#
# Targets:
#   run      (default) build, run the unit tests, then fuzz for FUZZ_SECONDS
#   unit     build and run the unit tests only (wire, then parity)
#   fuzz     build and run the fuzzer only
#   build    build the two unit tests and the fuzzer
#   seeds    regenerate the committed seed corpus tests/unit/distvm/fuzz-corpus
#   clean    remove $(B)/unit (binaries, fuzzing corpus, logs, crash files)
#
# Variables: FUZZ_SECONDS (60), FUZZ_MAX_LEN (16384), FUZZ_FLAGS (extra
# libFuzzer options), UNIT_SANITIZE (sanitizers for the gcc unit test build;
# empty to disable), WERROR (-Werror).

SHELL := /bin/bash
.DEFAULT_GOAL := run
.DELETE_ON_ERROR:

ifeq ($(TOP),)
$(error set TOP to the repository, e.g. TOP=$$PWD)
endif
B ?= $(TOP)/build

OUT := $(B)/unit
T := $(TOP)/tests/unit/distvm
WIRE := $(TOP)/accel/distvm/distvm-wire
QEMUUTIL := $(B)/qemu/libqemuutil.a

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
FUZZ_CC ?= clang

FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 16384
FUZZ_FLAGS ?=
WERROR ?= -Werror
UNIT_SANITIZE ?= -fsanitize=address,undefined -fno-sanitize-recover=all

GLIB_CFLAGS := $(shell pkg-config --cflags glib-2.0)
GLIB_LIBS := $(shell pkg-config --libs glib-2.0)

INCLUDES := -I$(B)/qemu -I$(B)/qemu/qapi -I$(B)/src/include -I$(B)/src \
    -I$(B)/src/host/include/x86_64 -I$(B)/src/host/include/generic \
    -I$(B)/src/linux-headers -I$(TOP)/accel/distvm $(GLIB_CFLAGS)
DEFINES := -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE
WARNINGS := -Wall -Wundef -Wwrite-strings -Wmissing-prototypes \
    -Wstrict-prototypes -Wold-style-definition -Wtype-limits \
    -Wformat-security -Wvla $(WERROR)
COMMON := -std=gnu11 -g -fno-strict-aliasing -fwrapv -fno-common \
    -fno-omit-frame-pointer -pthread $(DEFINES) $(INCLUDES) $(WARNINGS)

UNIT_CFLAGS := -O2 $(COMMON) $(UNIT_SANITIZE)
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -O1 $(COMMON) -Wno-unknown-warning-option $(FUZZ_SAN)
LIBS := $(QEMUUTIL) $(GLIB_LIBS) -lm -pthread

UNIT_BIN := $(OUT)/test-distvm-wire
PARITY_BIN := $(OUT)/test-distvm-parity
FUZZ_BIN := $(OUT)/distvm-wire-fuzz
SEEDS_BIN := $(OUT)/distvm-wire-seeds
CORPUS := $(OUT)/corpus
SEED_FILES := $(wildcard $(T)/fuzz-corpus/*)

# Objects also depend on this file, so that flag changes rebuild them;
# header dependencies come from the -MMD files.
MK := $(T)/unit.mk

.PHONY: run unit fuzz build seeds clean

run: build
	@$(MAKE) --no-print-directory -f $(MK) TOP=$(TOP) B=$(B) unit
	@$(MAKE) --no-print-directory -f $(MK) TOP=$(TOP) B=$(B) fuzz

build: $(UNIT_BIN) $(PARITY_BIN) $(FUZZ_BIN)

$(OUT)/gcc/%.o: $(TOP)/accel/distvm/%.c $(MK)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/gcc/%.o: $(T)/%.c $(MK)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/gcc/distvm-wire-seeds.o: $(T)/distvm-wire-fuzz.c $(MK)
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -DDISTVM_WIRE_FUZZ_SEEDS -MMD -MP -c $< -o $@

$(OUT)/clang/%.o: $(TOP)/accel/distvm/%.c $(MK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/clang/%.o: $(T)/%.c $(MK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(UNIT_BIN): $(OUT)/gcc/test-distvm-wire.o $(OUT)/gcc/distvm-wire.o \
        $(QEMUUTIL)
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.o,$^) $(LIBS)

$(PARITY_BIN): $(OUT)/gcc/test-distvm-parity.o $(OUT)/gcc/distvm-parity.o \
        $(QEMUUTIL)
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.o,$^) $(LIBS)

$(SEEDS_BIN): $(OUT)/gcc/distvm-wire-seeds.o $(OUT)/gcc/distvm-wire.o \
        $(QEMUUTIL)
	$(CC) $(UNIT_CFLAGS) -o $@ $(filter %.o,$^) $(LIBS)

$(FUZZ_BIN): $(OUT)/clang/distvm-wire-fuzz.o $(OUT)/clang/distvm-wire.o \
        $(QEMUUTIL)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.o,$^) $(LIBS)

-include $(wildcard $(OUT)/gcc/*.d $(OUT)/clang/*.d)

# The unit tests, with TAP output (in $(OUT)/unit.log and
# $(OUT)/parity-unit.log); fails on any "not ok" or a non-zero exit, after
# running both.
unit: $(UNIT_BIN) $(PARITY_BIN)
	@set -o pipefail; failed=0; \
	for t in wire:$(UNIT_BIN):$(OUT)/unit.log \
	        parity:$(PARITY_BIN):$(OUT)/parity-unit.log; do \
	    name=$${t%%:*}; t=$${t#*:}; bin=$${t%%:*}; log=$${t#*:}; \
	    $$bin --tap 2>&1 | tee $$log; rc=$$?; \
	    pass=$$(grep -c '^ok ' $$log); \
	    fail=$$(grep -c '^not ok ' $$log); \
	    if [ $$rc -ne 0 ] || [ $$fail -ne 0 ]; then \
	        echo "$$name unit: FAILED ($$fail failed, $$pass passed," \
	            "exit $$rc)"; \
	        failed=1; \
	    else \
	        echo "$$name unit: $$pass tests passed"; \
	    fi; \
	done; \
	exit $$failed

# The fuzzer, for FUZZ_SECONDS, on a corpus in $(OUT) seeded from the
# repository (libFuzzer adds to the corpus it is given).  Crash, leak and
# timeout reproducers go to $(OUT)/crash-*.
fuzz: $(FUZZ_BIN)
	@mkdir -p $(CORPUS)
	@cp $(SEED_FILES) $(CORPUS)/
	@rm -f $(OUT)/crash-* $(OUT)/leak-* $(OUT)/timeout-* $(OUT)/oom-*
	@echo "wire fuzz: $(FUZZ_SECONDS) s on $(CORPUS) (log in $(OUT)/fuzz.log)"
	@cd $(OUT) && $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -timeout=10 -max_len=$(FUZZ_MAX_LEN) \
	    -artifact_prefix=$(OUT)/ -print_final_stats=1 $(FUZZ_FLAGS) \
	    $(CORPUS) > $(OUT)/fuzz.log 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ] || ls $(OUT)/crash-* $(OUT)/leak-* $(OUT)/timeout-* \
	        $(OUT)/oom-* >/dev/null 2>&1; then \
	    tail -n 80 $(OUT)/fuzz.log; \
	    echo "wire fuzz: FAILED (exit $$rc); reproducers:"; \
	    ls -1 $(OUT)/crash-* $(OUT)/leak-* $(OUT)/timeout-* \
	        $(OUT)/oom-* 2>/dev/null; \
	    echo "reproduce with: $(FUZZ_BIN) <file>"; \
	    exit 1; \
	fi; \
	line=$$(grep -m1 '^Done [0-9]* runs in' $(OUT)/fuzz.log); \
	runs=$$(echo "$$line" | awk '{print $$2}'); \
	secs=$$(echo "$$line" | awk '{print $$5}'); \
	cov=$$(grep -o 'cov: [0-9]*' $(OUT)/fuzz.log | tail -n 1); \
	corp=$$(ls $(CORPUS) | wc -l); \
	echo "wire fuzz: $${runs:-?} runs in $${secs:-?} s, no crash" \
	    "($$cov, corpus $$corp files)"

# Regenerates the committed seeds from the encoder; run when it changes.
seeds: $(SEEDS_BIN)
	rm -rf $(T)/fuzz-corpus
	mkdir -p $(T)/fuzz-corpus
	$(SEEDS_BIN) $(T)/fuzz-corpus
	@ls -l $(T)/fuzz-corpus

clean:
	rm -rf $(OUT)
