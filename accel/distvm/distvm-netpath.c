/*
 * distvm: whether a node's network path is up, as its host says
 *
 * A node that serves queue pairs of a card (distvm-netqueues.c) sends
 * their packets out through a tap of its host.  Its path is up while that
 * tap is up and has its carrier (IFF_UP and IFF_LOWER_UP: a host takes a
 * tap down when its link is lost, or an operator does).  The host's
 * kernel tells each change of a link's state on a routing netlink socket
 * (RTMGRP_LINK), which the main loop watches; a request for the tap's
 * state when the watch begins gives the first.  A tap that goes down is
 * down at once; one that comes back up is up once it stayed up for the
 * accelerator's path-up-delay-ms, so that a link that flaps does not move
 * the pairs back and forth at each change.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "net/net.h"
#include "net/tap.h"
#include "distvm-internal.h"
#include "trace.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP    0x10000     /* <linux/if.h>, which <net/if.h> hides */
#endif

struct DistvmNetPath {
    int fd;                     /* NETLINK_ROUTE, RTMGRP_LINK */
    unsigned ifindex;
    char *ifname;
    bool up;                    /* as told: up until the host says otherwise */
    uint32_t up_delay_ms;
    QEMUTimer *up_timer;        /* up, but not yet for up_delay_ms */
    DistvmNetPathChanged *changed;
    void *opaque;
};

/* Ask the kernel for the state of @p's tap: it answers with RTM_NEWLINK */
static void netpath_ask(DistvmNetPath *p)
{
    struct {
        struct nlmsghdr h;
        struct ifinfomsg i;
    } req = {
        .h.nlmsg_len = sizeof(req),
        .h.nlmsg_type = RTM_GETLINK,
        .h.nlmsg_flags = NLM_F_REQUEST,
        .i.ifi_family = AF_UNSPEC,
        .i.ifi_index = p->ifindex,
    };

    if (send(p->fd, &req, sizeof(req), 0) < 0) {
        trace_distvm_netpath_error(p->ifname, "RTM_GETLINK", errno);
    }
}

static void netpath_tell(DistvmNetPath *p, bool up)
{
    if (up != p->up) {
        p->up = up;
        p->changed(p->opaque);
    }
}

static void netpath_stayed_up(void *opaque)
{
    netpath_tell(opaque, true);
}

/* The host says that @p's tap is @up (told so as it was first asked) */
static void netpath_set(DistvmNetPath *p, bool up)
{
    if (!up) {
        timer_del(p->up_timer);
        netpath_tell(p, false);
    } else if (!p->up && !timer_pending(p->up_timer)) {
        timer_mod(p->up_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  p->up_delay_ms);
    }
}

/*
 * A message of the kernel: a change of a link's state, or the answer to
 * netpath_ask().  Only the link's own (AF_UNSPEC): when a tap leaves a
 * bridge, the bridge's RTM_DELLINK of its port (AF_BRIDGE) does not
 * delete the tap.
 */
static void netpath_message(DistvmNetPath *p, const struct nlmsghdr *h)
{
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    bool up;

    if (h->nlmsg_type == NLMSG_ERROR &&
        h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
        const struct nlmsgerr *e = NLMSG_DATA(h);

        /* netpath_ask()'s answer if the tap is gone */
        if (e->error == -ENODEV) {
            trace_distvm_netpath_link(p->ifname, 0, false);
            netpath_set(p, false);
        }
        return;
    }
    if ((h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)) ||
        ifi->ifi_family != AF_UNSPEC || ifi->ifi_index != (int)p->ifindex) {
        return;
    }
    up = h->nlmsg_type == RTM_NEWLINK && (ifi->ifi_flags & IFF_UP) &&
         (ifi->ifi_flags & IFF_LOWER_UP);
    trace_distvm_netpath_link(p->ifname, ifi->ifi_flags, up);
    netpath_set(p, up);
}

static void netpath_read(void *opaque)
{
    DistvmNetPath *p = opaque;
    uint32_t buf[2048];         /* aligned for struct nlmsghdr */
    ssize_t len;

    while ((len = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
        if (len < 0) {
            if (errno == ENOBUFS) {
                /* Changes were lost (a down among them?): ask again */
                timer_del(p->up_timer);
                netpath_ask(p);
                continue;
            }
            if (errno != EAGAIN && errno != EINTR) {
                trace_distvm_netpath_error(p->ifname, "recv", errno);
            }
            if (errno != EINTR) {
                return;
            }
            continue;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            netpath_message(p, h);
        }
    }
}

DistvmNetPath *distvm_netpath_watch(const char *ifname, uint32_t up_delay_ms,
                                    DistvmNetPathChanged *changed,
                                    void *opaque, Error **errp)
{
    struct sockaddr_nl addr = {
        .nl_family = AF_NETLINK,
        .nl_groups = RTMGRP_LINK,
    };
    unsigned ifindex = if_nametoindex(ifname);
    DistvmNetPath *p;
    int fd;

    if (!ifindex) {
        error_setg_errno(errp, errno, "distvm: no network interface '%s' "
                         "to watch", ifname);
        return NULL;
    }
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                NETLINK_ROUTE);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "distvm: cannot watch the state of "
                         "network interface '%s' (netlink)", ifname);
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    p = g_new0(DistvmNetPath, 1);
    p->fd = fd;
    p->ifindex = ifindex;
    p->ifname = g_strdup(ifname);
    p->up = true;
    p->up_delay_ms = up_delay_ms;
    p->up_timer = timer_new_ms(QEMU_CLOCK_REALTIME, netpath_stayed_up, p);
    p->changed = changed;
    p->opaque = opaque;
    qemu_set_fd_handler(fd, netpath_read, NULL, p);
    netpath_ask(p);
    return p;
}

bool distvm_netpath_up(DistvmNetPath *p)
{
    return p->up;
}

DistvmNetPath *distvm_netpath_watch_tap(NetClientState *tap,
                                        uint32_t up_delay_ms,
                                        DistvmNetPathChanged *changed,
                                        void *opaque, Error **errp)
{
    struct ifreq ifr = { 0 };

    if (ioctl(tap_get_fd(tap), TUNGETIFF, &ifr) < 0) {
        error_setg_errno(errp, errno, "distvm: cannot get the name of the "
                         "tap '%s'", tap->name);
        return NULL;
    }
    return distvm_netpath_watch(ifr.ifr_name, up_delay_ms, changed, opaque,
                                errp);
}
