# Guest images for the distvm tests, built into $(OUT) (never committed).
#   make -f tests/qtest/distvm/guests.mk TOP=<repo> OUT=<dir>

G := $(TOP)/tests/qtest/distvm/guest
CC ?= cc
LD ?= ld
GUEST_CFLAGS := -m32 -march=i686 -msse2 -mstackrealign -O2 -ffreestanding -fno-pic -fno-pie \
    -fno-stack-protector -fno-asynchronous-unwind-tables -nostdlib \
    -Wall -Wextra -Werror -std=gnu11 -I$(TOP)/include

all: $(OUT)/smp-guest.elf $(OUT)/linux/.done

GUEST_OBJS := boot smp-guest irq-mode x2apic-mode s3-mode vmport-mode \
    lint0-mode affinity-mode msi-mode a20-mode remap-mode topology-mode \
    xcode-mode ipiflood-mode pci-msi

$(OUT)/smp-guest.elf: $(addprefix $(OUT)/obj/,$(addsuffix .o,$(GUEST_OBJS))) $(G)/guest.ld
	$(LD) -m elf_i386 -nostdlib --no-warn-rwx-segments -T $(G)/guest.ld -o $@ \
	    $(addprefix $(OUT)/obj/,$(addsuffix .o,$(GUEST_OBJS)))

# Every object depends on every header: they are few and small.
GUEST_HEADERS := $(G)/smp-workload.h $(G)/guest-hw.h \
    $(TOP)/include/hw/distmem/distmem-topology.h $(G)/../guests.mk

$(OUT)/obj/%.o: $(G)/%.c $(GUEST_HEADERS)
	@mkdir -p $(OUT)/obj
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(OUT)/obj/%.o: $(G)/%.S $(GUEST_HEADERS)
	@mkdir -p $(OUT)/obj
	$(CC) $(GUEST_CFLAGS) -c $< -o $@

$(OUT)/linux/.done: $(TOP)/scripts/build-linux-guest.sh $(wildcard $(G)/linux/*) \
    $(TOP)/include/hw/distmem/distmem-topology.h
	$(TOP)/scripts/build-linux-guest.sh $(OUT)/linux
	@touch $@
