/*
 * pipe.h — the deterministic fault core of walsim-netd: one connection's
 * two pipes (up: client -> server, down: server -> client), the protocol
 * tracking that frames and reads their bytes, and the decisions that
 * forward, drop, delay or corrupt them.
 *
 *   track.c  frame each direction with the libwalsim decoder and follow the
 *            protocol (startup parameters, commands, COPY mode, XLogData
 *            LSNs, status updates); connection stats;
 *   plan.c   for each framed message decide, from the seed, the rule and
 *            the message's logical coordinates, what happens to it;
 *   queue.c  the output queue: bytes with their release times (delay and
 *            bandwidth shaping, order preserved);
 *   pipe.c   input, the mover that applies plans in stream order, stalls,
 *            cuts, the zero-copy allowance and connection-level actions.
 *
 * Everything here is free of sockets and clocks: the caller passes "now"
 * in, which is what lets --replay-input run the same code on a recorded
 * stream and compare traces byte for byte.
 */
#ifndef WALSIM_NETD_PIPE_H
#define WALSIM_NETD_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/wire.h"
#include "fault.h"
#include "walsim/json.h"

/* What the tracker knows about a connection (both directions). */
typedef struct ConnInfo
{
	char		key[3 * NETD_NAME_MAX];	/* link/app/n: stable across runs */
	char		app[NETD_NAME_MAX];
	char		user[NETD_NAME_MAX];
	char		replication[16];	/* "", "true", "database"... */
	bool		startup_seen;
	char		command[128];		/* last command (first word(s) of the Query) */
	uint64_t	start_lsn;			/* START_REPLICATION position */
	uint32_t	timeline;
	bool		streaming_up;		/* client sent START_REPLICATION: its CopyData is r/h */
	bool		copy_down;			/* server sent CopyBothResponse */
	uint64_t	last_lsn_sent;		/* end of the last XLogData passed downstream */
	uint64_t	last_wal_end;		/* walEnd of the last w or k */
	uint64_t	ack_write;
	uint64_t	ack_flush;
	uint64_t	ack_apply;
	bool		tls;				/* TLS passed through: bytes are opaque */
	bool		awaiting_answer;	/* SSLRequest passed upstream, answer not seen */
} ConnInfo;

/* One framed message with its protocol meaning. */
typedef struct Framed
{
	WireMessage m;
	char		cls;			/* 'w' 'k' 'r' 'h' for replication CopyData, 'Q', or 0 */
	uint64_t	index_in_class;	/* 1-based count of this class in this direction */
	uint64_t	lsn_start;		/* XLogData: dataStart */
	uint64_t	lsn_end;		/* XLogData: dataStart + WAL bytes */
	uint64_t	wal_offset;		/* stream offset of the first WAL byte */
} Framed;

/* Output queue segment: bytes released no earlier than `release_ns`. */
typedef struct Segment
{
	uint64_t	len;
	uint64_t	release_ns;
} Segment;

/* A pending decision on a stream range (one message or opaque block). */
typedef struct Plan
{
	uint64_t	start;			/* stream offsets [start, end) */
	uint64_t	end;
	bool		drop;
	bool		inject_answer;	/* SSL/GSS request: answer 'N' ourselves, drop it */
	uint64_t	delay_ns;
	int			ncorrupt;
	uint64_t	corrupt_off[4];
	uint8_t		corrupt_mask[4];
} Plan;

/* bytes of a message body the decoder captures: enough for every header netd reads */
#define DECODER_CAPTURE 1024
/* a message at least this big makes the next read at its pipe's boundary a header read (link.h) */
#define SPLICE_MIN_MSG		(16u * 1024)

typedef struct Pipe
{
	NetdDir		dir;
	WireDecoder dec;
	bool		opaque;			/* no framing: TLS passed through */
	bool		failed;			/* protocol error: the connection must close */
	char		error[WALSIM_ERROR_MAX];

	/* input: stream bytes [in_base, in_base + in_len) not yet moved */
	uint8_t    *in;
	size_t		in_len;
	size_t		in_cap;
	uint64_t	in_base;
	uint64_t	decoded;		/* stream offset fed to the decoder so far */

	/* plans for messages reported but not fully moved */
	Plan	   *plans;
	size_t		nplans;
	size_t		plans_cap;

	/* output queue */
	uint8_t    *out;
	size_t		out_head;
	size_t		out_len;		/* bytes at out[out_head ..] */
	size_t		out_cap;
	Segment    *segs;
	size_t		seg_head;
	size_t		nsegs;
	size_t		segs_cap;
	uint64_t	last_release_ns;
	uint64_t	bw_next_ns;		/* token bucket: when the link is free again */

	uint64_t	forwarded;		/* stream offset of the next byte to queue */
	uint64_t	bytes_in;
	uint64_t	bytes_out;		/* bytes written to the destination */
	uint64_t	msgs[MC_NCLASSES];
	uint64_t	dropped;
	uint64_t	corrupted;
	uint64_t	spliced;		/* bytes moved socket to socket, never copied */
	uint64_t	nmsgs;
	uint64_t	block_index;	/* opaque mode: next block */
	uint64_t	plan_version;	/* opaque mode: the rule set (FaultSet.version) plans were made with */

	bool		swapped;		/* input buffer just handed to the output */
	bool		big_msgs;		/* the last message framed was >= SPLICE_MIN_MSG bytes */
	bool		cut;			/* cut_after reached: forward nothing more */
	bool		eof;			/* source closed */
	bool		shut_sent;		/* destination shut down for writing */
	uint64_t	stall_dropped;
} Pipe;

typedef struct Conn
{
	char		link[NETD_NAME_MAX];
	uint64_t	id;				/* accept number on the link (not a coordinate) */
	ConnInfo	info;
	Pipe		pipe[2];
	bool		tls_pass;		/* link passes SSL/GSS requests upstream */
	bool		raw;			/* raw link: opaque bytes from the first byte */
	/* the node that opened the connection (live proxy only; see nodes.h) */
	bool		has_src;
	char		src[NETD_NAME_MAX];	/* node name, "-" for none */
	char		src_addr[64];	/* the client's address:port */
	bool		want_close;		/* a fault asked for FIN */
	bool		want_reset;		/* a fault asked for RST */
	char		close_reason[128];
	bool		resume_up;		/* the SSL answer arrived: decode the client's bytes */
	/* per (link, app) numbering assigned at startup; set by the owner */
	uint64_t	(*next_app_number) (void *ctx, const char *link, const char *app);
	void	   *ctx;
} Conn;

/* ---------------------------------------------------------- pipe.c */

/* Set up a connection's two pipes (decoders in their directions). */
void		conn_init(Conn *c, const char *link, uint64_t id, bool tls_pass);

/*
 * Make a fresh connection raw (docs/netd.md, "Raw links"): both pipes
 * opaque from the first byte, decided per block of stream offset, and the
 * key LINK/SRC/N with n its number among SRC's connections on the link.
 */
void		conn_set_raw(Conn *c, const char *src, uint64_t n);

/* Name the connection's source node (and its address, once known). */
void		conn_set_src(Conn *c, const char *src, const char *addr);
void		conn_free(Conn *c);

/*
 * Bytes arrived from the source of direction `dir` (data, or data NULL when
 * they were read into pipe_input_space): frame them, decide, and queue what
 * may be forwarded.  Returns false when the stream is malformed
 * (c->pipe[dir].error says why); the caller closes the connection.
 */
bool		pipe_input(Conn *c, NetdDir dir, const uint8_t *data, size_t len,
					   FaultSet *fs, uint64_t now_ns);

/*
 * Room for n more input bytes: read() into it, then call pipe_input with
 * data NULL and the count read (no extra copy).
 */
uint8_t    *pipe_input_space(Pipe *p, size_t n);

/*
 * Zero-copy path: how many bytes of the source may go straight to the
 * destination without being looked at (the rest of a long message body
 * whose plan is "forward now", with nothing queued before it).  0 = none.
 * After moving n <= that many bytes outside the pipe, call pipe_spliced.
 */
size_t		pipe_splice_allowance(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);
/* The same once the bytes queued before the body are written (0 = none even then). */
size_t		pipe_splice_allowance_after_queue(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);
void		pipe_spliced(Conn *c, NetdDir dir, size_t n);

/* Re-run the mover (after a rule change or an expiry) without new input. */
void		pipe_pump(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);

/* Is the pipe stalled by a fault right now? */
bool		pipe_stalled(const Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);

/* Conn-level faults (close/reset) whose trigger is met: sets want_close/reset. */
void		conn_check_actions(Conn *c, FaultSet *fs, uint64_t now_ns);

/* ---------------------------------------------------------- queue.c */

/* Bytes ready to write at now_ns: pointer and length (0 = nothing). */
size_t		pipe_ready(const Pipe *p, uint64_t now_ns, const uint8_t **data);
/* n of the ready bytes were written. */
void		pipe_written(Pipe *p, size_t n);
/* Earliest release time of queued bytes, UINT64_MAX if none. */
uint64_t	pipe_next_release(const Pipe *p);

/*
 * How long to wait for a deadline: 0 when it is due or already past (a
 * release that fell due while the loop was busy), at most cap_ns (also for
 * UINT64_MAX, "nothing scheduled").
 */
uint64_t	pipe_wait_ns(uint64_t deadline_ns, uint64_t now_ns, uint64_t cap_ns);
/* Bytes held (input not moved plus output not written). */
size_t		pipe_backlog(const Pipe *p);

/* ---------------------------------------------------------- track.c */

/* Connection stats as a JSON object (for "stats"). */
void		conn_stats_json(const Conn *c, JsonBuf *j);

#endif							/* WALSIM_NETD_PIPE_H */
