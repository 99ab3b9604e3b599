/*
 * stream.h — START_REPLICATION of a physical walsender (stream.c).
 */
#ifndef WALSIM_SENDER_STREAM_H
#define WALSIM_SENDER_STREAM_H

#include "command.h"
#include "conn.h"

/*
 * The checks in PostgreSQL 15's order, CopyBothResponse, streaming until
 * the client's CopyDone, the end of a historic timeline, a timeout or a
 * stop; then the next-timeline row and CommandCompletes.
 */
void		stream_start(Conn *c, const ReplCommand *cmd);

#endif							/* WALSIM_SENDER_STREAM_H */
