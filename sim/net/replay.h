/*
 * replay.h — walsim-netd's replay mode (--replay-input): a recorded
 * two-way stream fed through the fault core with no sockets and virtual
 * time, the determinism self-check of docs/netd.md ("Determinism").
 */
#ifndef WALSIM_NETD_REPLAY_H
#define WALSIM_NETD_REPLAY_H

#include <stdint.h>

#include "fault.h"

typedef struct ReplayOptions
{
	const char *input;			/* PREFIX of PREFIX.fe and PREFIX.be */
	const char *output;			/* PREFIX of PREFIX.up and PREFIX.down, or NULL */
	const char *link;			/* the link name of the connection */
	uint64_t	chunk;			/* piece size; 0 = sizes drawn from the seed */
} ReplayOptions;

/*
 * Replay the recording through the rules of fs (their decisions and events
 * go to fs->trace), print a JSON summary with hashes of both outputs on
 * stdout, and return the exit status: 0, 1 when the recorded stream is not
 * valid protocol, 2 when a file cannot be read or written (said on stderr
 * after progname).
 */
int			replay_run(FaultSet *fs, const ReplayOptions *o, const char *progname);

#endif							/* WALSIM_NETD_REPLAY_H */
