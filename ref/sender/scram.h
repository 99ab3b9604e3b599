/*
 * scram.h — server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL
 * speaks it in AuthenticationSASL.
 *
 * The exchange is a small state machine that never touches a socket, so the
 * unit tests can drive it with RFC 7677's test vector:
 *
 *   scram_server_init()        password, salt, iteration count, server nonce
 *   scram_server_first()       client-first-message -> server-first-message
 *   scram_server_final()       client-final-message -> server-final-message
 *
 * Channel binding is not offered (no TLS), so the client's GS2 header must be
 * "n,," or "y,,"; "p=..." is refused.  The password is used as bytes: no
 * SASLprep normalisation, which matters only for non-ASCII passwords.
 */
#ifndef WALSIM_SENDER_SCRAM_H
#define WALSIM_SENDER_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

#define SCRAM_KEY_LEN	32		/* SHA-256 output */
#define SCRAM_MSG_MAX	1024	/* longest SCRAM message we accept or build */

typedef struct ScramServer
{
	uint8_t		salted_password[SCRAM_KEY_LEN];
	char		salt_b64[64];
	int			iterations;
	char		server_nonce[64];
	char		gs2_header[8];	/* "n,," or "y,," as the client sent it */
	char		client_first_bare[SCRAM_MSG_MAX];
	char		server_first[SCRAM_MSG_MAX];
	char		combined_nonce[2 * SCRAM_MSG_MAX];
	bool		first_done;
} ScramServer;

/*
 * Prepare an exchange.  salt and server_nonce may be NULL: then random ones
 * are drawn (the tests pass fixed ones to reproduce RFC 7677).
 */
bool		scram_server_init(ScramServer *s, const char *password,
							  const uint8_t *salt, size_t salt_len,
							  int iterations, const char *server_nonce,
							  WalsimError *err);

/* Parse client-first-message and build server-first-message into out. */
bool		scram_server_first(ScramServer *s, const char *client_first,
							   size_t len, char *out, size_t outlen,
							   WalsimError *err);

/*
 * Verify client-final-message; on success build server-final-message
 * ("v=...").  A wrong password is reported as false with a message that
 * says so.
 */
bool		scram_server_final(ScramServer *s, const char *client_final,
							   size_t len, char *out, size_t outlen,
							   WalsimError *err);

/* Base64 helpers (standard alphabet with padding), exposed for tests. */
size_t		scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
bool		scram_b64_decode(const char *in, size_t len, uint8_t *out,
							 size_t outlen, size_t *decoded);

#endif							/* WALSIM_SENDER_SCRAM_H */
