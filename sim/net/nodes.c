/*
 * nodes.c — the source-node table of walsim-netd (see nodes.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "nodes.h"

static bool
valid_name(const char *name)
{
	size_t		n = strlen(name);

	if (n == 0 || n >= NETD_NAME_MAX || strcmp(name, NETD_NO_NODE) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

bool
nodes_add(NodeTable *t, const char *name, const char *addr, WalsimError *err)
{
	struct in_addr a;

	if (!valid_name(name))
		return walsim_error_set(err, "name=%s: use 1-63 letters, digits, _ - . (not \"-\")", name);
	/* inet_pton accepts only the dotted quad: no names, no shorthand forms */
	if (inet_pton(AF_INET, addr, &a) != 1)
		return walsim_error_set(err, "addr=%s: not an IPv4 address (A.B.C.D)", addr);
	for (int i = 0; i < t->n; i++)
	{
		if (t->e[i].addr != a.s_addr)
			continue;
		if (strcmp(t->e[i].name, name) == 0)
			return true;
		return walsim_error_set(err, "addr=%s belongs to node %s (node del %s first)",
								addr, t->e[i].name, t->e[i].name);
	}
	if (t->n == NETD_MAX_NODE_ADDRS)
		return walsim_error_set(err, "too many node addresses (max %d)", NETD_MAX_NODE_ADDRS);
	snprintf(t->e[t->n].name, sizeof(t->e[t->n].name), "%s", name);
	t->e[t->n].addr = a.s_addr;
	t->n++;
	return true;
}

int
nodes_del(NodeTable *t, const char *name)
{
	int			removed = 0;
	int			k = 0;

	for (int i = 0; i < t->n; i++)
	{
		if (strcmp(t->e[i].name, name) == 0)
		{
			removed++;
			continue;
		}
		t->e[k++] = t->e[i];
	}
	t->n = k;
	return removed;
}

const char *
nodes_lookup(const NodeTable *t, uint32_t addr)
{
	for (int i = 0; i < t->n; i++)
		if (t->e[i].addr == addr)
			return t->e[i].name;
	return NETD_NO_NODE;
}

bool
nodes_known(const NodeTable *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->e[i].name, name) == 0)
			return true;
	return false;
}

void
nodes_names(const NodeTable *t, char *buf, size_t len)
{
	size_t		used = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; i < t->n; i++)
	{
		bool		seen = false;

		for (int k = 0; k < i && !seen; k++)
			seen = strcmp(t->e[k].name, t->e[i].name) == 0;
		if (seen)
			continue;
		used += (size_t) snprintf(buf + used, used < len ? len - used : 0, "%s%s",
								  used ? ", " : "", t->e[i].name);
		if (used >= len)
			break;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}
