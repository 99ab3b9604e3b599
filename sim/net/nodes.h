/*
 * nodes.h — source nodes of walsim-netd: which IPv4 address belongs to
 * which node, so that every connection is named by the node that opened it
 * (docs/netd.md, "Source nodes").  The control protocol fills the table
 * ("node add name=pg2 addr=127.0.0.12"); the link layer looks the client's
 * address up at accept.  Rules name nodes by name (src=), never by address.
 *
 * No sockets and no clocks here: addresses are in network byte order as
 * accept() returns them.
 */
#ifndef WALSIM_NETD_NODES_H
#define WALSIM_NETD_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"
#include "fault.h"

#define NETD_MAX_NODE_ADDRS	64

/* "-": the source name of a connection whose address is no node's */
#define NETD_NO_NODE		"-"

typedef struct NodeAddr
{
	char		name[NETD_NAME_MAX];
	uint32_t	addr;			/* IPv4, network byte order */
} NodeAddr;

typedef struct NodeTable
{
	NodeAddr	e[NETD_MAX_NODE_ADDRS];
	int			n;
} NodeTable;

/*
 * Give address text `addr` (dotted IPv4) to node `name`.  A name may have
 * several addresses; an address that belongs to another node is an error,
 * one that already belongs to this node is accepted and changes nothing.
 */
bool		nodes_add(NodeTable *t, const char *name, const char *addr, WalsimError *err);

/* Forget every address of `name`; returns how many there were. */
int			nodes_del(NodeTable *t, const char *name);

/* The node that has address `addr` (network byte order), or NETD_NO_NODE. */
const char *nodes_lookup(const NodeTable *t, uint32_t addr);

/* Does a node of that name exist? */
bool		nodes_known(const NodeTable *t, const char *name);

/* The node names, comma separated (for error messages). */
void		nodes_names(const NodeTable *t, char *buf, size_t len);

#endif							/* WALSIM_NETD_NODES_H */
