/*
 * fault.h — fault rules of walsim-netd: what a rule is, its syntax (the
 * key=value words of "fault add" and --fault, rules.c), and the logic that
 * decides whether a rule applies to a connection now, when it activates and
 * when it expires (fault.c).  See docs/netd.md, "Faults".
 *
 * Nothing here knows connections, sockets or clocks: a rule is matched
 * against a FaultScope, the coordinates and progress of one direction of a
 * connection that the caller (the pipe layer) fills in, and "now" is passed
 * in.
 */
#ifndef WALSIM_NETD_FAULT_H
#define WALSIM_NETD_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "trace.h"

#define NETD_NAME_MAX	64
#define NETD_MAX_FAULTS	128
#define NETD_MAX_SRC	16		/* names in one src= */
#define FAULT_JSON_MAX	2048	/* fault_to_json of the longest rule fits */

typedef enum NetdDir
{
	NETD_UP = 0,				/* client -> server */
	NETD_DOWN = 1				/* server -> client */
} NetdDir;

#define NETD_DIR_BIT(d)	(1u << (d))

/* "up" or "down" */
const char *netd_dir_name(NetdDir dir);

/*
 * Message classes, counted per direction by the tracker and named by rules
 * (msg=, count_msg=).
 */
enum
{
	MC_W, MC_K, MC_R, MC_H, MC_OTHER_COPY, MC_QUERY, MC_OTHER, MC_NCLASSES
};

/* Class index of a message char ('w', 'k', 'r', 'h'...); MC_OTHER if none. */
int			netd_msg_class(char c);
const char *netd_msg_class_name(int cls);

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
	/* source node filter (src=): connections opened by these nodes; "-" = no node */
	char		src[NETD_MAX_SRC][NETD_NAME_MAX];
	int			nsrc;			/* 0 = every source */
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

/* The installed rules with the seed and the trace their decisions go to. */
typedef struct FaultSet
{
	Fault		faults[NETD_MAX_FAULTS];
	int			nfaults;
	uint64_t	seed;
	Trace	   *trace;
	uint64_t	version;		/* bumped whenever the rule set changes (added, removed, expired) */
} FaultSet;

/*
 * One direction of one connection as the rules see it: its coordinates
 * (named in traces and filtered on) and its progress (for triggers).
 */
typedef struct FaultScope
{
	const char *link;
	const char *conn;			/* connection key, LINK/APP/N */
	const char *app;			/* application_name, "" before the startup packet */
	const char *src;			/* source node, "-" for none; NULL when unknown (replay) */
	NetdDir		dir;
	uint64_t	lsn_sent;		/* end of the WAL the connection sent downstream */
	uint64_t	nmsgs;			/* messages framed in this direction */
	const uint64_t *msgs;		/* the same per class, MC_NCLASSES entries */
	uint64_t	offset;			/* the stream offset in question (after_bytes) */
} FaultScope;

/* ---------------------------------------------------------- rules.c */

const char *fault_kind_name(FaultKind k);

/*
 * Parse the words of "fault add" (id=... link=... kind=... and the kind's
 * parameters).  Unknown keys, bad values and missing required keys are
 * errors naming the word; *out is written only on success.
 */
bool		fault_parse(Fault *out, int nwords, char **words, WalsimError *err);

/* The fault's definition as a JSON object (for "fault list"). */
void		fault_to_json(const Fault *f, char *buf, size_t len);

/* Split a control line into words in place; returns the count (max cap). */
int			netd_split_words(char *line, char **words, int cap);

/*
 * The key or kind of f that needs PostgreSQL framing ("kind=drop", "msg=",
 * "app=", ...), or NULL when f is byte-level and so valid on a raw link.
 */
const char *fault_needs_protocol(const Fault *f);

/* Is `name` one of the rule's src= names? */
bool		fault_names_src(const Fault *f, const char *name);

/* Parse "HOST:PORT" (IPv4 or a name) into host and port. */
bool		netd_parse_addr(const char *text, char *host, size_t hostlen,
							uint16_t *port, WalsimError *err);

/* ---------------------------------------------------------- fault.c */

/*
 * Does rule f apply to this scope now: not expired, its link, direction,
 * application and source node, fires left, and its trigger reached?
 */
bool		fault_applies(const Fault *f, const FaultScope *s);

/* First application of f: note the time (starts its duration) and trace "activate". */
void		fault_activate(FaultSet *fs, Fault *f, const FaultScope *s, uint64_t now_ns);

/* Mark faults whose duration has passed as expired (traced "expire"). */
void		faults_expire(FaultSet *fs, uint64_t now_ns);

/* Earliest time a fault expires, UINT64_MAX if none. */
uint64_t	faults_next_expiry(const FaultSet *fs);

/* Index of the fault with this id, -1 if none. */
int			faults_find(const FaultSet *fs, const char *id);

/* Append a rule (the caller checked there is room). */
void		faults_add(FaultSet *fs, const Fault *f);

/* Remove the fault at index i (the others keep their order). */
void		faults_remove_at(FaultSet *fs, int i);

/*
 * The refuse or partition rule that refuses a new connection on a link from
 * source node src ("-" for none), or NULL.
 */
Fault	   *faults_refusing(FaultSet *fs, const char *link, const char *src);

/* Does a refuse mode=ignore rule keep the link from accepting? */
bool		faults_pause_accept(const FaultSet *fs, const char *link);

#endif							/* WALSIM_NETD_FAULT_H */
