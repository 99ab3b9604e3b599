/*
 * script.h — the step language of walsim-probe.
 *
 * One step per line; blank lines and lines starting with '#' are ignored.
 *
 *   startup [key=value ...]   StartupMessage 3.0 (user and replication=true
 *                             come from the command line unless given here),
 *                             then answer authentication requests until
 *                             ReadyForQuery, ErrorResponse or close
 *   ssl | gssenc              SSLRequest / GSSENCRequest; reads the 1-byte answer
 *   query TEXT                Query (simple protocol); TEXT is the rest of the line
 *   status W F A [R]          CopyData 'r' (34 bytes): LSNs %X/%X, or "received"
 *                             (end of the last XLogData); R = replyRequested 0/1
 *   feedback X XE C CE        CopyData 'h' (25 bytes): xmins and epochs
 *   copydata HEX              CopyData with this payload
 *   copydone                  CopyDone
 *   terminate                 Terminate ('X')
 *   msg T HEX                 any typed message: type byte T, body HEX
 *   raw HEX                   these bytes, unframed
 *   wait TYPES MS             read until a message of one of TYPES arrives
 *                             (comma-separated: a backend type letter, "w"/"k"
 *                             for CopyData subtypes, "close"); timeout after MS
 *   read MS                   read whatever comes for MS milliseconds
 *   stream LSN MS             read until XLogData reaches LSN (or MS pass)
 *   sleep MS                  send and read nothing for MS milliseconds
 *   autoreply on|off          answer every keepalive that asks for a reply with
 *                             'r' write = flush = received (as a caught-up standby)
 *   close                     close the socket
 */
#ifndef WALSIM_PROBE_SCRIPT_H
#define WALSIM_PROBE_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

#define PROBE_MAX_PARAMS	16
#define PROBE_MAX_WAIT		8
#define PROBE_LSN_RECEIVED	UINT64_MAX	/* "received" in a status step */

typedef enum ProbeStepKind
{
	STEP_STARTUP,
	STEP_SSL,
	STEP_GSSENC,
	STEP_QUERY,
	STEP_STATUS,
	STEP_FEEDBACK,
	STEP_COPYDATA,
	STEP_COPYDONE,
	STEP_TERMINATE,
	STEP_MSG,
	STEP_RAW,
	STEP_WAIT,
	STEP_READ,
	STEP_STREAM,
	STEP_SLEEP,
	STEP_AUTOREPLY,
	STEP_CLOSE
} ProbeStepKind;

/* What a wait step waits for. */
#define PROBE_WAIT_CLOSE '\0'

typedef struct ProbeStep
{
	ProbeStepKind kind;
	int			line;			/* 1-based line number in the script */
	int			nparams;		/* startup: key=value pairs */
	char	   *keys[PROBE_MAX_PARAMS];
	char	   *values[PROBE_MAX_PARAMS];
	char	   *text;			/* query text */
	uint8_t    *bytes;			/* copydata/msg/raw payload (decoded hex) */
	size_t		nbytes;
	char		msg_type;		/* msg: the type byte */
	uint64_t	lsn[3];			/* status: write, flush, apply; stream: target */
	uint32_t	xid[4];			/* feedback */
	bool		reply;			/* status: replyRequested; autoreply: on */
	char		wait_for[PROBE_MAX_WAIT];	/* wait: types; PROBE_WAIT_CLOSE = close */
	int			nwait;
	int			ms;				/* wait/read/stream/sleep */
	uint32_t	protocol;		/* startup: protocol=3.N (0: 3.0) */
} ProbeStep;

typedef struct ProbeScript
{
	ProbeStep  *steps;
	int			nsteps;
} ProbeScript;

/*
 * Parse one line into *step (blank or comment lines set *empty).  Errors
 * name the line number and the offending word.
 */
bool		probe_parse_line(const char *line, int lineno, ProbeStep *step,
							 bool *empty, WalsimError *err);

/* Parse a whole script text; on failure nothing is left allocated. */
bool		probe_parse_script(const char *text, ProbeScript *script,
							   WalsimError *err);
void		probe_step_free(ProbeStep *step);
void		probe_script_free(ProbeScript *script);

/* Decode hex ("" allowed; whitespace not); returns malloc'd bytes. */
bool		probe_decode_hex(const char *hex, uint8_t **out, size_t *len,
							 WalsimError *err);

#endif							/* WALSIM_PROBE_SCRIPT_H */
