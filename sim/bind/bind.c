/*
 * bind.c — libwalsim-bind.so: connections from a node's own loopback
 * address (docs/clusters.md, "Node addresses").
 *
 * Preloaded (LD_PRELOAD) into every program that acts for one node —
 * PostgreSQL (and so its walreceiver), pg_basebackup, pg_rewind, an HA
 * manager — with WALSIM_SOURCE_ADDR set to the node's address.  It wraps
 * connect(2): a TCP socket that is not bound yet and is about to connect to
 * a loopback address (IPv4, or IPv4-mapped IPv6) is first bound to the
 * node's address with port 0, so that walsim-netd, pg_hba.conf and
 * pg_stat_replication see which node opened it.  Everything else passes
 * through untouched: other destinations (binding a loopback source would
 * make them unreachable), UDP, Unix sockets, sockets the program bound
 * itself, and every socket when WALSIM_SOURCE_ADDR is unset.
 *
 * The bind never makes a connect fail that would otherwise succeed: if it
 * is refused, the connection simply keeps the kernel's default source, and
 * errno is what connect() itself leaves.  The port is left to connect()
 * (IP_BIND_ADDRESS_NO_PORT), which picks it against the destination like
 * an unbound socket would, so binding costs no extra ephemeral port.
 *
 * Programs that make the system call themselves (Go: etcd, etcdctl) never
 * call libc's connect and are not covered.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define SOURCE_ENV	"WALSIM_SOURCE_ADDR"

typedef int (*ConnectFn) (int, const struct sockaddr *, socklen_t);

static ConnectFn real_connect;
static bool have_source;
static struct in_addr source;	/* network byte order */

static bool
is_loopback(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 24) == 127;
}

/* Read the configuration once, before main() and before any thread. */
__attribute__((constructor))
static void
bind_init(void)
{
	const char *v = getenv(SOURCE_ENV);

	real_connect = (ConnectFn) dlsym(RTLD_NEXT, "connect");
	if (v == NULL || v[0] == '\0')
		return;
	if (inet_pton(AF_INET, v, &source) != 1 || !is_loopback(source))
	{
		fprintf(stderr, "libwalsim-bind: %s=%s: not an IPv4 loopback address (127.x.y.z); "
				"connections keep their default source\n", SOURCE_ENV, v);
		return;
	}
	have_source = true;
}

/* Is the socket a TCP socket nobody has bound yet? */
static bool
unbound_stream(int fd)
{
	struct sockaddr_storage ss;
	socklen_t	len = sizeof(ss);
	int			type = 0;
	socklen_t	tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
		return false;
	if (getsockname(fd, (struct sockaddr *) &ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) &ss;

		return in->sin_port == 0 && in->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (ss.ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &ss;

		return in6->sin6_port == 0 && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	}
	return false;
}

/* Bind fd to the node's address if it is about to connect to a loopback address. */
static void
bind_source(int fd, const struct sockaddr *to, socklen_t tolen)
{
	int			one = 1;

	if (to->sa_family == AF_INET && tolen >= sizeof(struct sockaddr_in))
	{
		struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = source};

		if (!is_loopback(((const struct sockaddr_in *) to)->sin_addr) || !unbound_stream(fd))
			return;
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		(void) bind(fd, (struct sockaddr *) &src, sizeof(src));
	}
	else if (to->sa_family == AF_INET6 && tolen >= sizeof(struct sockaddr_in6))
	{
		const struct in6_addr *dst = &((const struct sockaddr_in6 *) to)->sin6_addr;
		struct sockaddr_in6 src = {.sin6_family = AF_INET6};
		struct in_addr v4;

		/* only ::ffff:127.x.y.z: ::1 has no IPv4 source to take */
		if (!IN6_IS_ADDR_V4MAPPED(dst))
			return;
		memcpy(&v4, &dst->s6_addr[12], sizeof(v4));
		if (!is_loopback(v4) || !unbound_stream(fd))
			return;
		src.sin6_addr.s6_addr[10] = 0xff;
		src.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&src.sin6_addr.s6_addr[12], &source, sizeof(source));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		(void) bind(fd, (struct sockaddr *) &src, sizeof(src));
	}
}

int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (real_connect == NULL)
	{
		/* called before our constructor ran (another library's constructor) */
		real_connect = (ConnectFn) dlsym(RTLD_NEXT, "connect");
		if (real_connect == NULL)
		{
			errno = ENOSYS;
			return -1;
		}
	}
	if (have_source && addr != NULL)
	{
		int			saved = errno;

		bind_source(fd, addr, len);
		errno = saved;
	}
	return real_connect(fd, addr, len);
}
