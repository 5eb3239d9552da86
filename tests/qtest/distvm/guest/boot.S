/*
 * distvm bare-metal SMP test guest: multiboot entry and AP trampoline
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define MB_MAGIC        0x1badb002
#define MB_FLAGS        0
#define STACK_SHIFT     14              /* 16 KiB per CPU */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    lgdt gdt_desc
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $(cpu_stacks + (1 << STACK_SHIFT)), %esp
    call enable_sse
    pushl %ebx                          /* multiboot information */
    call guest_main
halt_forever:
    cli
    hlt
    jmp halt_forever

/* APs arrive here from the trampoline, in protected mode. */
    .globl ap_entry32
ap_entry32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $1, %eax
    lock xaddl %eax, ap_next_stack      /* stack slot 1, 2, ... */
    incl %eax
    shll $STACK_SHIFT, %eax
    addl $cpu_stacks, %eax
    movl %eax, %esp
    call enable_sse
    call ap_main
    jmp halt_forever

/* The C code is built with SSE2: CR0.EM off, MP on; CR4.OSFXSR, OSXMMEXCPT */
enable_sse:
    movl %cr0, %eax
    andl $~4, %eax
    orl $2, %eax
    movl %eax, %cr0
    movl %cr4, %eax
    orl $0x600, %eax
    movl %eax, %cr4
    fninit
    ret

/* LAPIC timer interrupt: count it (in C) and return. */
    .globl timer_entry
timer_entry:
    pushal
    cld
    call timer_interrupt
    popal
    iret

    .globl ipi_entry
ipi_entry:
    pushal
    cld
    call ipi_interrupt
    popal
    iret

    .globl spurious_entry
spurious_entry:
    iret

/*
 * mode=irq and mode=x2apic: each vector's entry passes it to
 * irq_dispatch().  The vectors are smp-workload.h's: NMI, DG_PIC_VECTOR
 * and its spurious IRQ 7, DG_RTC_VECTOR, DG_TOPO_VECTOR, DG_IPI_BASE +
 * kind and dg_x2_vector(kind).
 */
#define IRQ_VECTORS 2, 0x20, 0x27, 0x51, 0x52, 0x60, 0x61, 0x62, 0x64, 0x65, \
                    0x66, 0x67
    .irp vec, IRQ_VECTORS
irq_entry_\vec:
    pushal
    cld
    pushl $\vec
    call irq_dispatch
    addl $4, %esp
    popal
    iret
    .endr

    .section .rodata
    .align 4
    .globl irq_stubs
irq_stubs:
    .irp vec, IRQ_VECTORS
    .long \vec, irq_entry_\vec
    .endr
    .long 0, 0
    .text

    .data
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            /* 0x08: flat 32-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: flat data */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

/*
 * Left unaligned on purpose (after the 6-byte gdt_desc): TCG does an
 * unaligned atomic on a slow path, and APs on different nodes take their
 * stacks here with "lock xadd" at the same moment.
 */
ap_next_stack:
    .long 1

    .bss
    .align 4096
    .globl cpu_stacks
cpu_stacks:
    .skip (17 << STACK_SHIFT)

/*
 * Real-mode start-up code for the APs.  Linked to run at 0x8000 and
 * copied there by the BSP before it sends the SIPIs (vector 0x08).
 */
    .section .trampoline, "ax"
    .code16
    .globl trampoline_start
trampoline_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl tr_gdt_desc
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $ap_entry32
    .align 4
tr_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

/*
 * mode=a20 (a20-mode.c): code that runs below 1 MiB, where turning A20
 * off does not move it, and is copied there with the trampoline.
 * Interrupts are off; the stack is used only while A20 is on.
 */
    .code32
#define PORT_A      0x92        /* bit 1: A20; bit 0 asks for a reset */

/*
 * void a20_self(uint32_t out[3], volatile uint32_t *lo,
 *               volatile uint32_t *hi)
 * @hi is @lo with bit 20 set.  Turns A20 off, reads *hi (out[0]) and
 * writes its complement there; turns A20 on and reads *lo (out[1]) and
 * *hi (out[2]).  With A20 off both went to *lo.
 */
    .globl a20_self
a20_self:
    pushl %ebx
    pushl %esi
    pushl %edi
    movl 16(%esp), %ecx
    movl 20(%esp), %esi
    movl 24(%esp), %edi
    inb $PORT_A, %al
    andb $0xfc, %al
    outb %al, $PORT_A
    movl (%edi), %ebx
    movl %ebx, %edx
    notl %edx
    movl %edx, (%edi)
    orb $2, %al
    outb %al, $PORT_A
    movl %ebx, (%ecx)
    movl (%esi), %edx
    movl %edx, 4(%ecx)
    movl (%edi), %edx
    movl %edx, 8(%ecx)
    popl %edi
    popl %esi
    popl %ebx
    ret

/*
 * uint32_t a20_wait_off(volatile uint32_t *lo, volatile uint32_t *hi,
 *                       uint32_t round)
 * Waits (about 2^35 TSC ticks at most) until *hi reads *lo's word: A20
 * is off, turned off by another CPU.  Then writes @round into a20_seen
 * and waits until A20 is on again.  Returns 1, or 0 if A20 stayed on.
 */
    .globl a20_wait_off
a20_wait_off:
    pushl %ebx
    pushl %esi
    pushl %edi
    pushl %ebp
    movl 20(%esp), %esi
    movl 24(%esp), %edi
    movl 28(%esp), %ebx
    rdtsc
    leal 8(%edx), %ebp
1:  movl (%edi), %eax
    cmpl (%esi), %eax
    je 2f
    pause
    rdtsc
    subl %ebp, %edx
    js 1b
    xorl %eax, %eax
    jmp 4f
2:  movl %ebx, a20_seen
3:  pause
    movl (%edi), %eax
    cmpl (%esi), %eax
    je 3b
    movl $1, %eax
4:  popl %ebp
    popl %edi
    popl %esi
    popl %ebx
    ret

    .align 4
    .globl a20_seen
a20_seen:
    .long 0

    .globl trampoline_end
trampoline_end:

    .section .note.GNU-stack, "", @progbits
