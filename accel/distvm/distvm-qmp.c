/*
 * distvm: QMP and HMP
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-distvm.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "hw/core/cpu.h"
#include "distvm-internal.h"

DistvmInfo *qmp_query_distvm(Error **errp)
{
    DistvmState *s = distvm_state();
    DistvmInfo *info;
    DistvmVcpuInfoList **tail;
    CPUState *cpu;

    if (!s) {
        error_setg(errp, "distvm is not the active accelerator");
        return NULL;
    }

    info = g_new0(DistvmInfo, 1);
    info->node_id = s->node_id;
    info->nodes = s->nodes;
    info->listen = g_strdup(s->listen);
    info->home = g_strdup(s->home);

    tail = &info->vcpus;
    CPU_FOREACH(cpu) {
        DistvmVcpuInfo *vcpu = g_new0(DistvmVcpuInfo, 1);

        vcpu->cpu_index = cpu->cpu_index;
        vcpu->node = distvm_vcpu_node(s, cpu->cpu_index);
        vcpu->qom_path = object_get_canonical_path(OBJECT(cpu));
        QAPI_LIST_APPEND(tail, vcpu);
    }
    return info;
}

static void hmp_info_distvm(Monitor *mon, const QDict *qdict)
{
    g_autoptr(DistvmInfo) info = NULL;
    Error *err = NULL;
    DistvmVcpuInfoList *v;

    info = qmp_query_distvm(&err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "node %" PRId64 " of %" PRId64 "%s\n",
                   info->node_id, info->nodes,
                   info->node_id == DISTVM_HOME_NODE ? " (home)" : "");
    if (info->listen) {
        monitor_printf(mon, "  listen: %s\n", info->listen);
    }
    if (info->home) {
        monitor_printf(mon, "  home: %s\n", info->home);
    }
    for (v = info->vcpus; v; v = v->next) {
        monitor_printf(mon, "  vCPU %" PRId64 ": node %" PRId64 "\n",
                       v->value->cpu_index, v->value->node);
    }
}

static void distvm_hmp_register(void)
{
    monitor_register_hmp("distvm", true, hmp_info_distvm);
}

type_init(distvm_hmp_register);
