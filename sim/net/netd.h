/*
 * netd.h — internals of walsim-netd, the protocol-aware deterministic TCP
 * fault proxy (see docs/netd.md for the user's view).
 *
 * The pieces, from the bytes up:
 *
 *   tracker.c  per connection and direction: frame the stream with the
 *              libwalsim decoder and follow the protocol (startup
 *              parameters, commands, COPY mode, XLogData LSNs, status
 *              updates);
 *   rules.c    fault rules: parsing "key=value" words, validation, and the
 *              control-line tokenizer;
 *   pipe.c     the deterministic fault core: for each framed message decide
 *              (from the seed, the rule and the message's logical
 *              coordinates) whether it is forwarded, dropped, delayed or
 *              corrupted, and queue the bytes with their release times;
 *   trace.c    JSON Lines trace and small JSON helpers;
 *   netd.c     the epoll loop, sockets, links, control socket, replay mode.
 *
 * Everything below netd.c is free of sockets and clocks: the caller passes
 * "now" in, which is what lets --replay-input run the same code on a
 * recorded stream and compare traces byte for byte.
 */
#ifndef WALSIM_NETD_H
#define WALSIM_NETD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "walsim/error.h"
#include "walsim/wire.h"

#define NETD_NAME_MAX	64
#define NETD_MAX_FAULTS	64

typedef enum NetdDir
{
	NETD_UP = 0,				/* client -> server */
	NETD_DOWN = 1				/* server -> client */
} NetdDir;

#define NETD_DIR_BIT(d)	(1u << (d))

/* ------------------------------------------------------------ faults */

typedef enum FaultKind
{
	FK_DELAY,
	FK_BANDWIDTH,
	FK_STALL,
	FK_PARTITION,
	FK_REFUSE,
	FK_RESET,
	FK_CLOSE,
	FK_CUT_AFTER,
	FK_CORRUPT,
	FK_DROP,
	FK_NKINDS
} FaultKind;

typedef enum CorruptMode
{
	CORRUPT_AT_OFFSET,			/* absolute byte offset in the direction's stream */
	CORRUPT_AT_LSN,				/* the WAL byte at an LSN inside XLogData */
	CORRUPT_NTH_XLOGDATA		/* a byte of the Nth XLogData (chosen by decision) */
} CorruptMode;

typedef enum TriggerKind
{
	TRIG_NOW,
	TRIG_LSN,					/* the connection has sent WAL past an LSN */
	TRIG_MSGS,					/* N messages of a class in this direction */
	TRIG_BYTES					/* N bytes in this direction */
} TriggerKind;

typedef struct Fault
{
	char		id[NETD_NAME_MAX];
	char		link[NETD_NAME_MAX];
	char		app[NETD_NAME_MAX];	/* connection filter; "" = every connection */
	unsigned	dirs;			/* NETD_DIR_BIT mask */
	FaultKind	kind;

	/* delay */
	uint64_t	delay_us;
	uint64_t	jitter_us;
	/* bandwidth (bytes per second) */
	uint64_t	rate;
	/* stall / partition: discard held bytes instead of keeping them */
	bool		discard;
	/* refuse / partition: reset new connections instead of closing them */
	bool		refuse_reset;
	/* refuse: leave new connections unaccepted in the listen backlog */
	bool		refuse_ignore;
	/* cut_after */
	uint64_t	cut_bytes;
	/* corrupt */
	CorruptMode corrupt_mode;
	uint64_t	corrupt_at;		/* offset, LSN or N depending on the mode */
	int			bit;			/* 0..7, or -1: chosen by the decision function */
	int			nbits;			/* how many distinct bits to flip when chosen (1..8) */
	/* message class for drop/delay/corrupt-by-class: 'w' 'k' 'r' 'h', 0 = all */
	char		msg;
	double		prob;			/* per-message probability (drop, delay) */

	/* trigger and bounds */
	TriggerKind trig;
	uint64_t	trig_value;
	char		trig_msg;		/* message class counted by TRIG_MSGS */
	uint64_t	duration_us;	/* 0 = until deleted or healed */
	uint64_t	max_fires;		/* 0 = unlimited */

	/* run-time state */
	uint64_t	activated_ns;	/* first time it applied (0 = not yet) */
	uint64_t	fires;
	bool		expired;
} Fault;

const char *fault_kind_name(FaultKind k);

/*
 * Parse the words of "fault add" (id=... link=... kind=... and the kind's
 * parameters).  Unknown keys, bad values and missing required keys are
 * errors naming the word.
 */
bool		fault_parse(Fault *f, int nwords, char **words, WalsimError *err);

/* The fault's definition as a JSON object (for "fault list"). */
void		fault_to_json(const Fault *f, char *buf, size_t len);

/* Split a control line into words in place; returns the count (max cap). */
int			netd_split_words(char *line, char **words, int cap);

/* Parse "HOST:PORT" (IPv4 or a name) into host and port. */
bool		netd_parse_addr(const char *text, char *host, size_t hostlen,
							uint16_t *port, WalsimError *err);

/* ------------------------------------------------------------ trace */

typedef struct Trace
{
	FILE	   *f;				/* NULL = tracing off */
	uint64_t	seq;
	uint64_t	seed;
} Trace;

/* A JSON string builder on a fixed buffer (truncates safely). */
typedef struct JsonBuf
{
	char	   *p;
	size_t		len;
	size_t		cap;
	bool		first;			/* no comma before the next member */
} JsonBuf;

void		json_init(JsonBuf *j, char *buf, size_t cap);
void		json_raw(JsonBuf *j, const char *s);
void		json_str(JsonBuf *j, const char *key, const char *value);
void		json_u64(JsonBuf *j, const char *key, uint64_t v);
void		json_i64(JsonBuf *j, const char *key, int64_t v);
void		json_bool(JsonBuf *j, const char *key, bool v);
void		json_lsn(JsonBuf *j, const char *key, uint64_t lsn);
/* "key": then the raw value text (an object or array built separately) */
void		json_member_raw(JsonBuf *j, const char *key, const char *raw);
void		json_escape(JsonBuf *j, const char *s);

/* One trace event: fields are appended by the caller between begin/end. */
void		trace_begin(Trace *t, JsonBuf *j, char *buf, size_t cap,
						uint64_t now_ns, const char *event);
void		trace_end(Trace *t, JsonBuf *j);

/* ------------------------------------------------------------ tracking */

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

/* Message classes counted per direction. */
enum
{
	MC_W, MC_K, MC_R, MC_H, MC_OTHER_COPY, MC_QUERY, MC_OTHER, MC_NCLASSES
};

/* Class index of a message char ('w', 'k', 'r', 'h'...) or -1. */
int			netd_msg_class(char c);
const char *netd_msg_class_name(int cls);

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

/* ------------------------------------------------------------ pipe */

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

typedef struct Conn Conn;

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

	bool		swapped;		/* input buffer just handed to the output */
	bool		cut;			/* cut_after reached: forward nothing more */
	bool		eof;			/* source closed */
	bool		shut_sent;		/* destination shut down for writing */
	uint64_t	stall_dropped;
} Pipe;

/* Shared context the fault core reads: the rules, the seed and the trace. */
typedef struct FaultSet
{
	Fault		faults[NETD_MAX_FAULTS];
	int			nfaults;
	uint64_t	seed;
	Trace	   *trace;
} FaultSet;

struct Conn
{
	char		link[NETD_NAME_MAX];
	uint64_t	id;				/* accept number on the link (not a coordinate) */
	ConnInfo	info;
	Pipe		pipe[2];
	bool		tls_pass;		/* link passes SSL/GSS requests upstream */
	bool		want_close;		/* a fault asked for FIN */
	bool		want_reset;		/* a fault asked for RST */
	char		close_reason[128];
	bool		resume_up;		/* the SSL answer arrived: decode the client's bytes */
	/* per (link, app) numbering assigned at startup; set by the owner */
	uint64_t	(*next_app_number) (void *ctx, const char *link, const char *app);
	void	   *ctx;
};

/* Set up a connection's two pipes (decoders in their directions). */
void		conn_init(Conn *c, const char *link, uint64_t id, bool tls_pass);
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
void		pipe_spliced(Conn *c, NetdDir dir, size_t n);

/* Re-run the mover (after a heal or an expiry) without new input. */
void		pipe_pump(Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);

/* Bytes ready to write at now_ns: pointer and length (0 = nothing). */
size_t		pipe_ready(const Pipe *p, uint64_t now_ns, const uint8_t **data);
/* n of the ready bytes were written. */
void		pipe_written(Pipe *p, size_t n);
/* Earliest release time of queued bytes, UINT64_MAX if none. */
uint64_t	pipe_next_release(const Pipe *p);
/* Bytes held (input not moved plus output not written). */
size_t		pipe_backlog(const Pipe *p);
/* Is the pipe stalled by a fault right now? */
bool		pipe_stalled(const Conn *c, NetdDir dir, FaultSet *fs, uint64_t now_ns);

/* Does fault f apply to this connection/direction now (filter + trigger)? */
bool		fault_applies(const Fault *f, const Conn *c, NetdDir dir, uint64_t now_ns);

/* Conn-level faults (close/reset) whose trigger is met: sets want_close/reset. */
void		conn_check_actions(Conn *c, FaultSet *fs, uint64_t now_ns);

/* Mark faults whose duration has passed as expired (traced). */
void		faults_expire(FaultSet *fs, uint64_t now_ns);

/* Earliest time a fault expires, UINT64_MAX if none. */
uint64_t	faults_next_expiry(const FaultSet *fs);

/* Connection stats as JSON (for "stats"). */
void		conn_stats_json(const Conn *c, JsonBuf *j);

#endif							/* WALSIM_NETD_H */
