/*
 * distvm: TLS between the nodes of a cluster
 *
 * With tls-creds=ID, every connection of the cluster is a QIOChannelTLS
 * over its socket, as migration's are: the node that accepts it is the
 * TLS server and checks the other's identity (its x509 distinguished
 * name or PSK username) against the tls-authz object, the node that
 * opens it is the TLS client and checks the server's certificate.  Since
 * every node both accepts and opens connections, it needs credentials
 * for both ends: the object named by tls-creds gives one, and a copy of
 * it with the other endpoint (same directory, same settings) the other.
 *
 * The handshake is done in the thread that accepted or opened the
 * connection, on the blocking socket, before any message: a peer that
 * fails it never reaches the cluster.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-crypto.h"
#include "qobject/qobject.h"
#include "qobject/qstring.h"
#include "qom/qom-qobject.h"
#include "qom/object_interfaces.h"
#include "authz/base.h"
#include "crypto/tlscreds.h"
#include "io/channel-tls.h"
#include "distvm-internal.h"
#include "trace.h"

/* Properties of the credentials objects that the other endpoint shares. */
static const char *const tls_creds_shared_props[] = {
    "dir", "verify-peer", "priority", "username", "sanity-check",
    "passwordid",
};

/* A copy of @creds for the other end of a connection. */
static QCryptoTLSCreds *distvm_tls_twin(Object *creds,
                                        QCryptoTLSCredsEndpoint endpoint,
                                        Error **errp)
{
    g_autoptr(Object) twin = object_new(object_get_typename(creds));

    for (size_t i = 0; i < G_N_ELEMENTS(tls_creds_shared_props); i++) {
        const char *name = tls_creds_shared_props[i];
        QObject *value;
        bool ok;

        if (!object_property_find(creds, name)) {
            continue;
        }
        value = object_property_get_qobject(creds, name, NULL);
        /* An unset string property reads as "": leave it unset. */
        if (!value || (qobject_type(value) == QTYPE_QSTRING &&
                       !*qstring_get_str(qobject_to(QString, value)))) {
            qobject_unref(value);
            continue;
        }
        ok = object_property_set_qobject(twin, name, value, errp);
        qobject_unref(value);
        if (!ok) {
            return NULL;
        }
    }
    if (!object_property_set_str(twin, "endpoint",
                                 QCryptoTLSCredsEndpoint_str(endpoint),
                                 errp) ||
        !user_creatable_complete(USER_CREATABLE(twin), errp)) {
        return NULL;
    }
    return QCRYPTO_TLS_CREDS(g_steal_pointer(&twin));
}

/* The object with id @id, which property @prop names, of type @type. */
static Object *distvm_tls_object(const char *prop, const char *id,
                                 const char *type, const char *what,
                                 Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(),
                                                id);

    if (!obj || !object_dynamic_cast(obj, type)) {
        error_setg(errp, "distvm: %s=%s: no %s has this id", prop, id, what);
        return NULL;
    }
    return obj;
}

bool distvm_tls_init(DistvmState *s, Error **errp)
{
    Object *creds;
    QCryptoTLSCredsEndpoint endpoint;
    Error *err = NULL;

    if (!s->tls_creds) {
        if (s->tls_authz) {
            error_setg(errp, "distvm: tls-authz needs tls-creds");
            return false;
        }
        return true;
    }
    creds = distvm_tls_object("tls-creds", s->tls_creds,
                              TYPE_QCRYPTO_TLS_CREDS, "TLS credentials object "
                              "(tls-creds-x509, tls-creds-psk)", errp);
    if (!creds) {
        return false;
    }
    if (object_dynamic_cast(creds, "tls-creds-anon")) {
        error_setg(errp, "distvm: tls-creds=%s: anonymous credentials "
                   "authenticate nobody; use tls-creds-x509 or "
                   "tls-creds-psk", s->tls_creds);
        return false;
    }
    if (s->tls_authz &&
        !distvm_tls_object("tls-authz", s->tls_authz, TYPE_QAUTHZ,
                           "authorization object (authz-simple, "
                           "authz-list, ...)", errp)) {
        return false;
    }
    endpoint = object_property_get_enum(creds, "endpoint",
                                        "QCryptoTLSCredsEndpoint", &err);
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    if (endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER) {
        s->tls_server = QCRYPTO_TLS_CREDS(object_ref(creds));
        s->tls_client = distvm_tls_twin(creds,
                                        QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
                                        &err);
    } else {
        s->tls_client = QCRYPTO_TLS_CREDS(object_ref(creds));
        s->tls_server = distvm_tls_twin(creds,
                                        QCRYPTO_TLS_CREDS_ENDPOINT_SERVER,
                                        &err);
    }
    if (err) {
        error_propagate_prepend(errp, err, "distvm: tls-creds=%s: a node "
                                "needs the credentials of both ends of a "
                                "connection, and those of the %s end cannot "
                                "be loaded: ", s->tls_creds,
                                endpoint == QCRYPTO_TLS_CREDS_ENDPOINT_SERVER ?
                                "client" : "server");
        return false;
    }
    return true;
}

typedef struct DistvmHandshake {
    bool done;
    Error *err;
} DistvmHandshake;

static void distvm_tls_handshake_done(QIOTask *task, gpointer opaque)
{
    DistvmHandshake *h = opaque;

    qio_task_propagate_error(task, &h->err);
    h->done = true;
}

/*
 * The channel to use for the connection @sioc (a new reference): @sioc
 * itself without TLS, or a TLS channel over it once the handshake is
 * done.  @peer_addr is the address this node connected to, or NULL if it
 * accepted the connection.
 */
QIOChannel *distvm_tls_wrap(DistvmState *s, QIOChannelSocket *sioc,
                            const char *peer_addr, Error **errp)
{
    g_autoptr(SocketAddress) addr = NULL;
    g_autoptr(GMainContext) ctx = NULL;
    DistvmHandshake h = { 0 };
    QIOChannelTLS *tioc;

    if (!s->tls_server) {
        return QIO_CHANNEL(object_ref(sioc));
    }
    if (!peer_addr) {
        tioc = qio_channel_tls_new_server(QIO_CHANNEL(sioc), s->tls_server,
                                          s->tls_authz, errp);
    } else {
        /*
         * The server's certificate must name the host we connected to, or
         * tls-hostname; a UNIX socket's, "localhost".
         */
        const char *hostname = s->tls_hostname;

        addr = socket_parse(peer_addr, NULL);
        if (!hostname) {
            hostname = addr && addr->type == SOCKET_ADDRESS_TYPE_INET ?
                       addr->u.inet.host : "localhost";
        }
        tioc = qio_channel_tls_new_client(QIO_CHANNEL(sioc), s->tls_client,
                                          hostname, errp);
    }
    if (!tioc) {
        return NULL;
    }
    ctx = g_main_context_new();
    qio_channel_tls_handshake(tioc, distvm_tls_handshake_done, &h, NULL, ctx);
    while (!h.done) {
        g_main_context_iteration(ctx, TRUE);
    }
    if (h.err) {
        trace_distvm_tls_refused(peer_addr ?: "an accepted connection",
                                 error_get_pretty(h.err));
        error_propagate(errp, h.err);
        object_unref(OBJECT(tioc));
        return NULL;
    }
    trace_distvm_tls_ready(peer_addr ?: "an accepted connection");
    return QIO_CHANNEL(tioc);
}
