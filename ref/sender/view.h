/*
 * view.h — the WAL as one connection sees it: the end of WAL it reports
 * and streams to (moved back by the take-back misbehaviour), and the
 * follow-mode look for new WAL before answering about the end.
 */
#ifndef WALSIM_SENDER_VIEW_H
#define WALSIM_SENDER_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

/* The end of WAL as this connection may see it. */
uint64_t	view_end(Conn *c);

/* Follow mode: look for new WAL; false (an ERROR sent) when that fails. */
bool		view_refresh(Conn *c);

#endif							/* WALSIM_SENDER_VIEW_H */
