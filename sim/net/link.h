/*
 * link.h — the socket side of walsim-netd: links (a listener and the
 * upstream it forwards to), the connections accepted on them ("slots": a
 * client socket, a server socket and the Conn of the fault core between
 * them), and the epoll registrations of both.
 *
 *   link.c  links, listeners and accepting, the proxy-wide state and the
 *           step that brings every listener and connection in line with
 *           the rule set (proxy_settle);
 *   slot.c  a connection's I/O: reading into its pipes, the zero-copy path,
 *           writing what is due, half-closes, close and reset.
 *
 * Every socket is non-blocking.  Each connection has two pipes with bounded
 * backlogs: a source is not read while its pipe holds more than
 * PIPE_BACKLOG_MAX bytes, so a slow or stalled destination pushes back on
 * the sender through TCP instead of growing memory.
 */
#ifndef WALSIM_NETD_LINK_H
#define WALSIM_NETD_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "walsim/error.h"
#include "fault.h"
#include "nodes.h"
#include "pipe.h"
#include "trace.h"

#define PIPE_BACKLOG_MAX	(4u * 1024 * 1024)
#define READ_CHUNK			(256u * 1024)
/*
 * While a pipe carries big messages (XLogData; Pipe.big_msgs), a read at a
 * message boundary takes only HEADER_READ bytes, what the decoder captures
 * before it reports a message (its 5-byte frame and DECODER_CAPTURE bytes of
 * body): the message is framed and planned, and the rest of its body is
 * spliced instead of copied.  Streams of small messages (query results) go
 * on reading READ_CHUNK at a time.
 */
#define HEADER_READ			(5u + DECODER_CAPTURE)
#define MAX_LINKS			64
#define MAX_APPS			64

/*
 * An epoll registration: the event loop calls fn(h, events) for each event
 * on the descriptor, so the loop needs to know nothing of what it serves.
 */
typedef struct Handle Handle;
typedef void (*HandleFn) (Handle *h, uint32_t events);

struct Handle
{
	HandleFn	fn;
	void	   *owner;			/* the Proxy or ControlServer */
	void	   *ptr;			/* the Link, Slot or Control */
};

typedef struct AppCount
{
	char		app[NETD_NAME_MAX];
	uint64_t	n;
} AppCount;

typedef struct Link
{
	bool		used;
	char		name[NETD_NAME_MAX];
	char		listen_host[256];
	uint16_t	listen_port;
	char		up_host[256];
	uint16_t	up_port;
	struct sockaddr_storage up_addr;
	socklen_t	up_addrlen;
	bool		tls_pass;
	bool		raw;			/* proto=raw: opaque bytes, any TCP protocol */
	int			fd;
	Handle		h;
	uint64_t	accepted;
	uint64_t	refused;
	bool		ignoring;		/* refuse mode=ignore: not accepting */
	bool		listener_off;	/* not in epoll: ignoring, or backing off */
	uint64_t	backoff_until;	/* out of descriptors: accept again at this time */
	uint64_t	closed_bytes[2];	/* bytes of connections already closed */
	AppCount	apps[MAX_APPS];	/* connections per application (raw links: per source) */
	int			napps;
} Link;

typedef struct Slot
{
	Conn		c;
	Link	   *link;
	uint32_t	peer_addr;		/* the client's IPv4 address (network order), 0 if none */
	int			cfd;
	int			sfd;
	bool		connecting;
	uint32_t	ev_c;			/* epoll interest registered */
	uint32_t	ev_s;
	Handle		hc;
	Handle		hs;
	/* zero-copy path: a kernel pipe per direction, and what it holds */
	int			kp[2][2];
	size_t		kp_len[2];
	size_t		kp_cap[2];
	bool		no_splice;
	bool		dead;			/* closed; freed after the current event batch */
	uint64_t	opened_ns;		/* accepted at (the startup timeout counts from here) */
	struct Slot *next;
} Slot;

/* The proxy: rules, links and live connections. */
typedef struct Proxy
{
	const char *progname;		/* prefix of messages on stderr */
	int			ep;				/* the epoll instance */
	FaultSet	fs;
	Trace		trace;
	Link		links[MAX_LINKS];
	Slot	   *slots;
	Slot	   *graveyard;		/* closed slots whose events may still be pending */
	bool		default_tls_pass;
	/*
	 * Out of descriptors: one descriptor held in reserve is given up to
	 * accept and close the connection at the head of the backlog, so the
	 * listener never stays readable with nothing done (a busy loop).
	 */
	int			reserve_fd;
	uint64_t	fd_shortages;	/* accepts that failed for lack of descriptors */
	uint64_t	startup_timeout_ns; /* close a client silent this long before its startup packet; 0 = never */
	uint64_t	settled_ns;		/* the time proxy_settle last served everything due */
	uint64_t	startup_timeouts;	/* connections closed for it */
	NodeTable	nodes;			/* source nodes by address */
} Proxy;

#define DEFAULT_STARTUP_TIMEOUT_NS	(30ull * 1000000000ull)
#define ACCEPT_BACKOFF_NS			(100ull * 1000000ull)

/* ---------------------------------------------------------- link.c */

/* The daemon's clock: CLOCK_MONOTONIC in nanoseconds. */
uint64_t	proxy_now_ns(void);

/* A trace event with up to two string fields (k2 NULL: one, k1 NULL: none). */
void		proxy_trace(Proxy *p, const char *event, const char *k1, const char *v1,
						const char *k2, const char *v2);

Link	   *proxy_find_link(Proxy *p, const char *name);

/* The descriptor kept in reserve for accepting when the limit is reached. */
void		proxy_reserve_fd(Proxy *p);

/*
 * Add a link; listen port 0 picks a free port (in the Link).  raw: any TCP
 * protocol, opaque from the first byte (docs/netd.md, "Raw links").
 */
bool		proxy_link_add(Proxy *p, const char *name, const char *listen_addr,
						   const char *upstream, bool tls_pass, bool raw, WalsimError *err);
/* "NAME=LISTEN,UPSTREAM[,raw]" from the command line */
bool		proxy_link_add_spec(Proxy *p, const char *spec, WalsimError *err);
/* Close a link's listener and connections. */
void		proxy_link_del(Proxy *p, Link *l);

/*
 * Name node `name` by address `addr` ("node add"): traced, and every live
 * connection from that address takes the name.  *renamed counts them.
 */
bool		proxy_node_add(Proxy *p, const char *name, const char *addr, int *renamed,
						   WalsimError *err);
/* Forget a node's addresses ("node del"); its connections become "-".  false: unknown. */
bool		proxy_node_del(Proxy *p, const char *name);

/*
 * Can rule f be installed: its link exists, a raw link gets only
 * byte-level faults, and every src= name is a known node (or "-")?
 */
bool		proxy_check_fault(Proxy *p, const Fault *f, WalsimError *err);

/*
 * Bring every listener and connection in line with the rule set at `now`:
 * expire rules whose duration has passed, pause or resume accepting for
 * refuse mode=ignore, apply close/reset rules, move held bytes and write
 * what is due.  The event loop runs it after each batch of events, and the
 * control protocol after every command that changes rules, so that each
 * command takes effect before the next is read.
 */
void		proxy_settle(Proxy *p, uint64_t now);

/* Free the slots closed during the last batch of events. */
void		proxy_bury_dead(Proxy *p);

/*
 * Earliest time something falls due after the last proxy_settle (a release,
 * an expiry, the end of an accept back-off, a startup timeout), UINT64_MAX
 * if none.  What was due at that settle was served then or waits for its
 * socket (EPOLLOUT wakes the loop): counting it would spin the loop.
 */
uint64_t	proxy_next_deadline(const Proxy *p);

/* Close every connection and listener. */
void		proxy_close_all(Proxy *p);

/* ---------------------------------------------------------- slot.c */

/*
 * A new connection accepted on l from `peer` (NULL if unknown), opened by
 * source node `src`: connect upstream and start proxying.
 */
void		slot_open(Proxy *p, Link *l, int fd, const struct sockaddr_storage *peer, const char *src);

/* When a connection that has sent no startup packet yet is closed (UINT64_MAX: never). */
uint64_t	slot_startup_deadline(const Proxy *p, const Slot *s);

/* Close both sockets (RST when reset), trace conn_close; freed by proxy_bury_dead. */
void		slot_close(Proxy *p, Slot *s, const char *reason, bool reset);

/*
 * Write what is due, propagate half-closes, apply close/reset actions and
 * register the interest the connection needs now.  false = slot closed.
 */
bool		slot_service(Proxy *p, Slot *s, uint64_t now);

#endif							/* WALSIM_NETD_LINK_H */
