/*
 * auth.h — the client side of PostgreSQL password authentication for
 * walsim-probe: the password from a .pgpass file, MD5 and SCRAM-SHA-256
 * (RFC 5802 / RFC 7677, no channel binding: the probe does not speak TLS).
 */
#ifndef WALSIM_PROBE_AUTH_H
#define WALSIM_PROBE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

/*
 * The password of the first .pgpass line matching host, port, database and
 * user ('*' matches anything; '\' escapes ':' and '\').  *found is false
 * when no line matches.  The result is malloc'd.
 */
bool		probe_passfile_lookup(const char *path, const char *host, const char *port,
								  const char *database, const char *user,
								  char **password, bool *found, WalsimError *err);

/* "md5" + hex(md5(hex(md5(password || user)) || salt)), 35 chars + NUL. */
void		probe_md5_response(const char *user, const char *password,
							   const uint8_t salt[4], char out[36]);

typedef struct ScramClient
{
	char		nonce[64];		/* client nonce (base64 of random bytes) */
	char	   *first_bare;		/* "n=,r=<nonce>" */
	char	   *server_first;
	char	   *final_no_proof;
	uint8_t		salted[32];
	uint8_t		server_signature[32];
} ScramClient;

/* client-first-message ("n,,n=,r=..."); malloc'd. */
char	   *probe_scram_first(ScramClient *s);
/* client-final-message for the server-first-message; malloc'd or NULL. */
char	   *probe_scram_final(ScramClient *s, const char *password,
							  const char *server_first, size_t len, WalsimError *err);
/* Check the server-final-message ("v=..."). */
bool		probe_scram_verify(const ScramClient *s, const char *server_final,
							   size_t len, WalsimError *err);
void		probe_scram_free(ScramClient *s);

#endif							/* WALSIM_PROBE_AUTH_H */
