# Guest images for the distvm tests, built into $(OUT) (never committed).
#   make -f tests/qtest/distvm/guests.mk TOP=<repo> OUT=<dir>

G := $(TOP)/tests/qtest/distvm/guest
CC ?= cc
LD ?= ld
GUEST_CFLAGS := -m32 -march=i686 -msse2 -mstackrealign -O2 -ffreestanding -fno-pic -fno-pie \
    -fno-stack-protector -fno-asynchronous-unwind-tables -nostdlib \
    -Wall -Wextra -Werror -std=gnu11

all: $(OUT)/smp-guest.elf $(OUT)/linux/.done

$(OUT)/smp-guest.elf: $(G)/boot.S $(G)/smp-guest.c $(G)/irq-mode.c $(G)/x2apic-mode.c $(G)/s3-mode.c $(G)/vmport-mode.c $(G)/affinity-mode.c $(G)/msi-mode.c $(G)/a20-mode.c $(G)/smp-workload.h $(G)/guest-hw.h $(G)/guest.ld $(G)/../guests.mk
	@mkdir -p $(OUT)/obj
	$(CC) $(GUEST_CFLAGS) -c $(G)/boot.S -o $(OUT)/obj/boot.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/smp-guest.c -o $(OUT)/obj/smp-guest.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/irq-mode.c -o $(OUT)/obj/irq-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/x2apic-mode.c -o $(OUT)/obj/x2apic-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/s3-mode.c -o $(OUT)/obj/s3-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/vmport-mode.c -o $(OUT)/obj/vmport-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/affinity-mode.c -o $(OUT)/obj/affinity-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/msi-mode.c -o $(OUT)/obj/msi-mode.o
	$(CC) $(GUEST_CFLAGS) -c $(G)/a20-mode.c -o $(OUT)/obj/a20-mode.o
	$(LD) -m elf_i386 -nostdlib --no-warn-rwx-segments -T $(G)/guest.ld -o $@ \
	    $(OUT)/obj/boot.o $(OUT)/obj/smp-guest.o $(OUT)/obj/irq-mode.o \
	    $(OUT)/obj/x2apic-mode.o $(OUT)/obj/s3-mode.o \
	    $(OUT)/obj/vmport-mode.o $(OUT)/obj/affinity-mode.o \
	    $(OUT)/obj/msi-mode.o $(OUT)/obj/a20-mode.o

$(OUT)/linux/.done: $(TOP)/scripts/build-linux-guest.sh $(wildcard $(G)/linux/*)
	$(TOP)/scripts/build-linux-guest.sh $(OUT)/linux
	@touch $@
