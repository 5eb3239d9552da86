/*
 * distvm qtest helpers: x509 certificates made with Debian's certtool,
 * and network namespaces that put each node on a host of its own
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "distvm-tls-netns.h"

static void run_or_fail(const char *dir, const char *const *argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL;
    int status;

    if (!g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                      NULL, NULL, &out, &status, &err)) {
        g_error("cannot run %s (is gnutls-bin installed?): %s", argv[0],
                err->message);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        g_error("%s failed:\n%s", argv[0], out);
    }
}

static void write_file(const char *dir, const char *name, const char *text)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* A private key in @dir/@name, made with Debian's certtool. */
static void make_key(const char *dir, const char *name)
{
    const char *argv[] = { "certtool", "--generate-privkey",
                           "--key-type=ecdsa", "--outfile", name, NULL };

    run_or_fail(dir, argv);
}

char *distvm_make_tls_dir(const char *tmpdir, const char *name,
                          const char *cn, const char *extra)
{
    g_autofree char *ca = g_build_filename(tmpdir, "tls-ca", NULL);
    char *dir = g_build_filename(tmpdir, name, NULL);
    g_autofree char *info = g_strdup_printf(
        "cn = %s\ndns_name = localhost\n%stls_www_server\ntls_www_client\n"
        "signing_key\n"
        "expiration_days = 2\n", cn, extra);
    g_autofree char *ca_cert = g_build_filename(ca, "ca-cert.pem", NULL);
    g_autofree char *ca_key = g_build_filename(ca, "ca-key.pem", NULL);
    const char *sign[] = { "certtool", "--generate-certificate",
                           "--load-privkey", "server-key.pem",
                           "--load-ca-certificate", ca_cert,
                           "--load-ca-privkey", ca_key,
                           "--template", "cert.info",
                           "--outfile", "server-cert.pem", NULL };
    g_autofree char *cert = NULL, *key = NULL;
    g_autofree char *cert_path = g_build_filename(dir, "server-cert.pem",
                                                  NULL);
    g_autofree char *key_path = g_build_filename(dir, "server-key.pem", NULL);

    if (!g_file_test(ca_cert, G_FILE_TEST_EXISTS)) {
        const char *self[] = { "certtool", "--generate-self-signed",
                               "--load-privkey", "ca-key.pem",
                               "--template", "ca.info",
                               "--outfile", "ca-cert.pem", NULL };

        g_assert_cmpint(g_mkdir_with_parents(ca, 0700), ==, 0);
        write_file(ca, "ca.info", "cn = distvm test CA\nca\n"
                   "cert_signing_key\nexpiration_days = 2\n");
        make_key(ca, "ca-key.pem");
        run_or_fail(ca, self);
    }
    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    write_file(dir, "cert.info", info);
    make_key(dir, "server-key.pem");
    run_or_fail(dir, sign);
    g_assert_true(g_file_get_contents(ca_cert, &cert, NULL, NULL));
    write_file(dir, "ca-cert.pem", cert);
    g_free(cert);
    g_assert_true(g_file_get_contents(cert_path, &cert, NULL, NULL));
    write_file(dir, "client-cert.pem", cert);
    g_assert_true(g_file_get_contents(key_path, &key, NULL, NULL));
    write_file(dir, "client-key.pem", key);
    return dir;
}

char *distvm_tls_objects(const char *dir)
{
    return g_strdup_printf("-object tls-creds-x509,id=tls0,dir=%s,"
                           "endpoint=server,verify-peer=on "
                           "-object authz-simple,id=authz0,"
                           "identity=CN=distvm-node", dir);
}

void distvm_sh(const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    va_list ap;
    int status;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    status = system(cmd);
    if (status != 0) {
        g_error("'%s' failed (status %d): network namespaces need root and "
                "iproute2", cmd, status);
    }
}

void distvm_netns_setup(const char *prefix, int subnet, int nodes)
{
    distvm_sh("ip netns add %ssw && ip -n %ssw link add br0 type bridge && "
       "ip -n %ssw link set br0 up", prefix, prefix, prefix);
    for (int i = 0; i < nodes; i++) {
        distvm_sh("ip netns add %s%d && ip -n %s%d link set lo up && "
           "ip link add %sv%d type veth peer name %sp%d && "
           "ip link set %sv%d netns %s%d && ip link set %sp%d netns %ssw && "
           "ip -n %s%d addr add 10.199.%d.%d/24 dev %sv%d && "
           "ip -n %s%d link set %sv%d up && "
           "ip -n %ssw link set %sp%d master br0 && "
           "ip -n %ssw link set %sp%d up",
           prefix, i, prefix, i, prefix, i, prefix, i, prefix, i, prefix, i,
           prefix, i, prefix, prefix, i, subnet, i + 1, prefix, i, prefix, i,
           prefix, i, prefix, prefix, i, prefix, prefix, i);
    }
}

void distvm_netns_cleanup(const char *prefix, int nodes)
{
    g_autofree char *cmd = g_strdup_printf("ip netns del %ssw", prefix);

    g_assert_cmpint(system(cmd), ==, 0);
    for (int i = 0; i < nodes; i++) {
        g_free(cmd);
        cmd = g_strdup_printf("ip netns del %s%d", prefix, i);
        g_assert_cmpint(system(cmd), ==, 0);
    }
}
