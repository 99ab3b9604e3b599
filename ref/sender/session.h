/*
 * session.h — the start of a walsim-sender connection: startup packet
 * (SSL and GSS requests answered 'N'), refusal beyond --max-connections,
 * authentication by the configured method, session parameters.
 */
#ifndef WALSIM_SENDER_SESSION_H
#define WALSIM_SENDER_SESSION_H

#include <stdbool.h>

#include "conn.h"

/* Startup packet through the first ReadyForQuery; false: connection over. */
bool		session_establish(Conn *c);

#endif							/* WALSIM_SENDER_SESSION_H */
