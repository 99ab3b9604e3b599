/*
 * view.c — the WAL as one connection sees it (view.h).
 */
#include "walsim/lsn.h"
#include "view.h"

/* The end of WAL as this connection may see it (take-back misbehaviour). */
uint64_t
view_end(Conn *c)
{
	uint64_t	end = c->src->end;

	if ((c->cfg->misbehave & MIS_TAKE_BACK) && c->number >= 2)
	{
		uint64_t	back = lsn_align_down(end, c->src->seg_size);

		if (back == end && back >= c->src->seg_size)
			back -= c->src->seg_size;
		if (back > c->src->oldest_lsn)
			end = back;
	}
	return end;
}

/* Look for new WAL (follow mode) before answering about the end of WAL. */
bool
view_refresh(Conn *c)
{
	WalsimError err;

	if (!c->cfg->follow)
		return true;
	if (!walsource_refresh(c->src, NULL, &err))
	{
		conn_error(c, "58030", err.message, NULL);
		return false;
	}
	return true;
}
