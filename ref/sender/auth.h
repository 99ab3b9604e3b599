/*
 * auth.h — who may connect to walsim-sender and how they prove it.
 *
 * Methods: trust (anyone), password (cleartext), md5 (PostgreSQL's
 * "md5" + md5(md5(password || role) || salt)) and scram-sha-256.
 *
 * Accepted roles and passwords come from a file, never from the command line
 * (where any local user could read them in /proc).  Each non-empty line not
 * starting with '#' is either
 *     role:password                                   (two fields)
 *  or host:port:database:role:password                (a ~/.pgpass line;
 *                                                      only role and password
 *                                                      are used)
 * with '\:' and '\\' escaping a colon and a backslash as in .pgpass.  The
 * role "*" matches any role.  The file must not be readable by group or
 * others (as libpq insists for .pgpass).
 */
#ifndef WALSIM_SENDER_AUTH_H
#define WALSIM_SENDER_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

typedef enum AuthMethod
{
	AUTH_TRUST,
	AUTH_PASSWORD,
	AUTH_MD5,
	AUTH_SCRAM
} AuthMethod;

#define AUTH_FIELD_MAX 256

typedef struct AuthEntry
{
	char		role[AUTH_FIELD_MAX];
	char		password[AUTH_FIELD_MAX];
} AuthEntry;

typedef struct AuthConfig
{
	AuthMethod	method;
	int			nentries;
	AuthEntry  *entries;		/* malloc'd */
} AuthConfig;

bool		auth_method_parse(const char *text, AuthMethod *method, WalsimError *err);
const char *auth_method_name(AuthMethod method);

/* Parse passfile text (for tests) or load it from a file (checks its mode). */
bool		auth_passfile_parse(const char *text, AuthConfig *cfg, WalsimError *err);
bool		auth_passfile_load(const char *path, AuthConfig *cfg, WalsimError *err);
void		auth_config_free(AuthConfig *cfg);

/* The password accepted for role, or NULL if the role is unknown. */
const char *auth_lookup(const AuthConfig *cfg, const char *role);

/* "md5" + 32 hex digits, as libpq answers AuthenticationMD5Password. */
void		auth_md5_response(const char *password, const char *role,
							  const uint8_t salt[4], char out[36]);

#endif							/* WALSIM_SENDER_AUTH_H */
