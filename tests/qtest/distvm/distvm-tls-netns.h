/*
 * distvm qtest helpers: x509 certificates made with Debian's certtool,
 * and network namespaces that put each node on a host of its own
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DISTVM_TLS_NETNS_H
#define DISTVM_TLS_NETNS_H

/*
 * A directory for tls-creds-x509 in @tmpdir/@name (returned): the test
 * CA's certificate (made once, in @tmpdir/tls-ca), and one certificate
 * for the subject CN=@cn, valid for localhost and the certtool template
 * lines @extra, that serves as both the server's and the client's (a
 * node is both).
 */
char *distvm_make_tls_dir(const char *tmpdir, const char *name,
                          const char *cn, const char *extra);

/*
 * The -object options of a node with the certificates in @dir: tls0, and
 * authz0 that admits CN=distvm-node.
 */
char *distvm_tls_objects(const char *dir);

/* Run a shell command as root; fail the test if it fails. */
void G_GNUC_PRINTF(1, 2) distvm_sh(const char *fmt, ...);

/*
 * @nodes network namespaces @prefix0, @prefix1, ..., each with a veth
 * pair to a bridge in a namespace @prefix"sw" (the switch): node i is
 * 10.199.@subnet.(i + 1).  The link of node i is "@prefix"p<i> in the
 * switch namespace.
 */
void distvm_netns_setup(const char *prefix, int subnet, int nodes);

/* Remove the namespaces of distvm_netns_setup(). */
void distvm_netns_cleanup(const char *prefix, int nodes);

#endif /* DISTVM_TLS_NETNS_H */
