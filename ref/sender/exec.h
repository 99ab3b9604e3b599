/*
 * exec.h — the replication command loop of a walsim-sender connection.
 */
#ifndef WALSIM_SENDER_EXEC_H
#define WALSIM_SENDER_EXEC_H

#include "conn.h"

/*
 * Answer the client's messages after authentication until it terminates,
 * the connection fails or a stop is requested (then FATAL 57P01).
 */
void		exec_command_loop(Conn *c);

#endif							/* WALSIM_SENDER_EXEC_H */
