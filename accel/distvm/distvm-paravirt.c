/*
 * distvm: the guest flushes other vCPUs' TLBs with a hypercall
 *
 * A guest spread over nodes that flushes TLBs with IPIs (Linux does, for
 * every change of a multi-threaded process's mappings) pays for each
 * target on another node an interrupt sent over the wire and three or
 * four page faults on the call's data.  The guest is offered instead the
 * part of Hyper-V's interface (its Top-Level Functional Specification)
 * that Linux and Windows use for a remote TLB flush:
 *
 * - CPUID 0x40000000 to 0x40000005: "Microsoft Hv", the hypercall page
 *   and VP index MSRs, an invariant TSC (Linux on Hyper-V drops the TSC
 *   as its clocksource otherwise; distvm-cpu.c says why it is one), and
 *   the hint that remote TLB flushes are better made with a hypercall;
 * - HV_X64_MSR_HYPERCALL: the guest's hypercall page, which gets
 *   ENDBR64, VMMCALL and RET; HV_X64_MSR_VP_INDEX: the vCPU's index;
 *   HV_X64_MSR_GUEST_OS_ID, kept and read back.  Every other MSR of the
 *   range reads as 0 and ignores writes, as TCG does with MSRs it does
 *   not know;
 * - HvFlushVirtualAddressSpace and HvFlushVirtualAddressList (64-bit
 *   callers, processor masks of VP indexes below 64): every vCPU named
 *   has its whole TLB flushed (distvm-tlbflush.c).  Other hypercalls
 *   fail with HV_STATUS_INVALID_HYPERCALL_CODE, so the guest uses IPIs.
 *
 * Nothing else of Hyper-V is offered (no SynIC, timers or VMBus); the
 * guest's other hardware is what the machine has.  The option is
 * pv-tlb-flush, on by default for a guest that starts on more than one
 * node (start-nodes; one that starts alone may be migrated to another
 * accelerator once it is alone again).  A guest that enabled its
 * hypercall page cannot be migrated: no other accelerator offers it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "cpu.h"
#include "exec/cpu-common.h"
#include "exec/memory.h"
#include "hw/core/cpu.h"
#include "migration/blocker.h"
#include "system/reset.h"
#include "hw/hyperv/hyperv-proto.h"
#include "kvm/hyperv-proto.h"
#include "distvm-internal.h"
#include "trace.h"

/* Not in QEMU's headers: the TLFS's remote flush hypercalls */
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE  0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST   0x0003
#define HV_FLUSH_ALL_PROCESSORS             BIT_ULL(0)
/* HV_CPUID_FEATURES.EAX: the TSC is invariant */
#define HV_ACCESS_TSC_INVARIANT             BIT(15)
/* The hypercall input value: code, fast, rep count, rep start index */
#define HV_HYPERCALL_CODE(control)          ((control) & 0xffff)
#define HV_HYPERCALL_REP_COUNT(control)     (((control) >> 32) & 0xfff)
#define HV_HYPERCALL_RESULT(status, reps)   ((uint64_t)(status) | \
                                             (uint64_t)(reps) << 32)
/* The input of both flushes: address space, flags, processor mask */
#define HV_FLUSH_INPUT_SIZE                 24

/* The build that CPUID 0x40000002 reports: none of Microsoft's */
#define DISTVM_HV_BUILD                     1

/*
 * The partition's MSRs, the same on every vCPU (the guest writes them
 * once, on its boot vCPU), from a reset on; as other nodes' vCPUs do not
 * read them, they are this node's
 */
static uint64_t hv_guest_os_id;
static uint64_t hv_hypercall_msr;
static Error *hv_migration_blocker;

static bool distvm_pv_cpuid(X86CPU *cpu, uint32_t index, uint32_t count,
                            uint32_t *eax, uint32_t *ebx, uint32_t *ecx,
                            uint32_t *edx)
{
    *eax = *ebx = *ecx = *edx = 0;
    switch (index) {
    case HV_CPUID_VENDOR_AND_MAX_FUNCTIONS:
        *eax = HV_CPUID_IMPLEMENT_LIMITS;
        memcpy(ebx, "Micr", 4);
        memcpy(ecx, "osof", 4);
        memcpy(edx, "t Hv", 4);
        break;
    case HV_CPUID_INTERFACE:
        memcpy(eax, "Hv#1", 4);
        break;
    case HV_CPUID_VERSION:
        *eax = DISTVM_HV_BUILD;
        break;
    case HV_CPUID_FEATURES:
        *eax = HV_HYPERCALL_AVAILABLE | HV_VP_INDEX_AVAILABLE |
               HV_ACCESS_TSC_INVARIANT;
        break;
    case HV_CPUID_ENLIGHTMENT_INFO:
        *eax = HV_REMOTE_TLB_FLUSH_RECOMMENDED;
        *ebx = UINT32_MAX;      /* never notify of long spinlock waits */
        break;
    case HV_CPUID_IMPLEMENT_LIMITS:
        *eax = *ebx = 64;       /* VP indexes the flushes' masks can name */
        break;
    default:
        /* Past the last leaf: as the processor does, the last basic one */
        return false;
    }
    return true;
}

/* Once the guest uses the hypercall, another accelerator would #UD it */
static void hv_block_migration(void)
{
    BQL_LOCK_GUARD();

    if (!hv_migration_blocker) {
        error_setg(&hv_migration_blocker, "distvm: the guest uses the remote "
                   "TLB flush hypercall (pv-tlb-flush), which no other "
                   "accelerator offers; start it with pv-tlb-flush=off to "
                   "migrate it");
        migrate_add_blocker_internal(&hv_migration_blocker, &error_warn);
    }
}

static void hv_reset(void *opaque)
{
    qatomic_set(&hv_guest_os_id, 0);
    qatomic_set(&hv_hypercall_msr, 0);
}

/* The hypercall page: ENDBR64, VMMCALL, RET; the rest INT3 */
static void hv_write_hypercall_page(uint64_t gpa)
{
    static const uint8_t code[] = {
        0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x01, 0xd9, 0xc3,
    };
    g_autofree uint8_t *page = g_malloc(TARGET_PAGE_SIZE);

    memset(page, 0xcc, TARGET_PAGE_SIZE);
    memcpy(page, code, sizeof(code));
    cpu_physical_memory_write(gpa, page, TARGET_PAGE_SIZE);
}

static bool distvm_pv_msr(X86CPU *cpu, uint32_t index, uint64_t *val,
                          bool write)
{
    switch (index) {
    case HV_X64_MSR_GUEST_OS_ID:
        if (write) {
            qatomic_set(&hv_guest_os_id, *val);
        } else {
            *val = qatomic_read(&hv_guest_os_id);
        }
        return true;
    case HV_X64_MSR_HYPERCALL:
        if (!write) {
            *val = qatomic_read(&hv_hypercall_msr);
            return true;
        }
        qatomic_set(&hv_hypercall_msr, *val);
        if (*val & HV_HYPERCALL_ENABLE) {
            hv_write_hypercall_page(*val & TARGET_PAGE_MASK);
            hv_block_migration();
        }
        trace_distvm_pv_hypercall_page(CPU(cpu)->cpu_index, *val);
        return true;
    case HV_X64_MSR_VP_INDEX:
        if (!write) {
            *val = CPU(cpu)->cpu_index;
        }
        return true;
    default:
        return false;
    }
}

/* The processor mask of a flush's input at @gpa, or false */
static bool hv_flush_targets(X86CPU *cpu, uint64_t gpa, uint64_t *vcpus)
{
    uint64_t in[HV_FLUSH_INPUT_SIZE / 8];
    CPUState *cs;

    if (gpa & 7 || address_space_read(CPU(cpu)->as, gpa,
                                      MEMTXATTRS_UNSPECIFIED, in,
                                      sizeof(in)) != MEMTX_OK) {
        return false;
    }
    if (le64_to_cpu(in[1]) & HV_FLUSH_ALL_PROCESSORS) {
        *vcpus = 0;
        CPU_FOREACH(cs) {
            if (cs->cpu_index >= 64) {
                return false;   /* past the mask: the guest uses IPIs */
            }
            *vcpus |= BIT_ULL(cs->cpu_index);
        }
    } else {
        *vcpus = le64_to_cpu(in[2]);
    }
    return true;
}

static bool distvm_pv_vmmcall(X86CPU *cpu)
{
    CPUX86State *env = &cpu->env;
    CPUState *cs = CPU(cpu);
    uint64_t control = env->regs[R_ECX];
    uint32_t code = HV_HYPERCALL_CODE(control);
    uint64_t vcpus;
    uint32_t reps = 0;
    uint16_t status = HV_STATUS_SUCCESS;

    if (env->hflags & HF_CPL_MASK) {
        return false;           /* #UD, as Hyper-V does */
    }
    if (!(env->hflags & HF_LMA_MASK) || !(env->hflags & HF_CS64_MASK)) {
        /* 32-bit callers (EDX:EAX) are not served: they use IPIs */
        env->regs[R_EAX] = HV_STATUS_INVALID_HYPERCALL_CODE;
        env->regs[R_EDX] = 0;
        return true;
    }
    if (code != HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE &&
        code != HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST) {
        status = HV_STATUS_INVALID_HYPERCALL_CODE;
    } else if (control & HV_HYPERCALL_FAST) {
        status = HV_STATUS_INVALID_HYPERCALL_INPUT;
    } else if (!hv_flush_targets(cpu, env->regs[R_EDX], &vcpus)) {
        status = HV_STATUS_INVALID_PARAMETER;
    } else {
        if (!distvm_tlb_flush(distvm_state(), cs, vcpus)) {
            /* Wanted outside the guest's code: VMMCALL runs again later */
            cpu_exit(cs);
            cpu_loop_exit(cs);
        }
        /* Every vCPU's whole TLB: each address of a list is done */
        if (code == HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST) {
            reps = HV_HYPERCALL_REP_COUNT(control);
        }
    }
    env->regs[R_EAX] = HV_HYPERCALL_RESULT(status, reps);
    return true;
}

static const X86ParavirtHooks distvm_pv_hooks = {
    .cpuid = distvm_pv_cpuid,
    .msr = distvm_pv_msr,
    .vmmcall = distvm_pv_vmmcall,
};

void distvm_paravirt_init(DistvmState *s)
{
    if (s->pv_tlb_flush && s->start_nodes > 1) {
        distvm_tlb_flush_init(s);
        qemu_register_reset(hv_reset, NULL);
        x86_paravirt_hooks = &distvm_pv_hooks;
    }
}
