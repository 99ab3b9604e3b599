/*
 * auth.c — passfile lookup, MD5 and SCRAM-SHA-256 client math (see auth.h).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "walsim/parse.h"

/* Next ':'-separated field of a .pgpass line, unescaped in place. */
static char *
next_field(char **p)
{
	char	   *start = *p;
	char	   *out = start;
	char	   *in = start;

	if (start == NULL)
		return NULL;
	while (*in && *in != ':')
	{
		if (*in == '\\' && in[1] != '\0')
			in++;
		*out++ = *in++;
	}
	*p = *in == ':' ? in + 1 : NULL;
	*out = '\0';
	return start;
}

static bool
field_matches(const char *field, const char *value)
{
	return strcmp(field, "*") == 0 || (value != NULL && strcmp(field, value) == 0);
}

bool
probe_passfile_lookup(const char *path, const char *host, const char *port,
					  const char *database, const char *user,
					  char **password, bool *found, WalsimError *err)
{
	FILE	   *f = fopen(path, "r");
	char		line[1024];

	*found = false;
	*password = NULL;
	if (f == NULL)
		return walsim_error_set(err, "passfile \"%s\": cannot open", path);
	while (fgets(line, sizeof(line), f))
	{
		char	   *p = line;
		char	   *fields[5];

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (int i = 0; i < 4; i++)
			fields[i] = next_field(&p);
		fields[4] = p;			/* the password: the rest, unescaped below */
		if (fields[3] == NULL || fields[4] == NULL)
			continue;
		fields[4] = next_field(&p);
		if (field_matches(fields[0], host) && field_matches(fields[1], port) &&
			field_matches(fields[2], database) && field_matches(fields[3], user))
		{
			*password = strdup(fields[4]);
			if (*password == NULL)
				abort();
			*found = true;
			break;
		}
	}
	fclose(f);
	return true;
}

static void
to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xF];
	}
	out[2 * n] = '\0';
}

static void
md5_hex(const void *data, size_t len, char out[33])
{
	uint8_t		digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!EVP_Digest(data, len, digest, &dlen, EVP_md5(), NULL))
		abort();
	to_hex(digest, 16, out);
}

void
probe_md5_response(const char *user, const char *password,
				   const uint8_t salt[4], char out[36])
{
	size_t		plen = strlen(password);
	size_t		ulen = strlen(user);
	char	   *buf = malloc(plen + ulen + 1);
	char		inner[33 + 4];

	if (buf == NULL)
		abort();
	memcpy(buf, password, plen);
	memcpy(buf + plen, user, ulen);
	md5_hex(buf, plen + ulen, inner);
	free(buf);
	memcpy(inner + 32, salt, 4);
	memcpy(out, "md5", 3);
	md5_hex(inner, 36, out + 3);
}

static void
hmac_sha256(const uint8_t *key, size_t klen, const void *data, size_t len, uint8_t out[32])
{
	unsigned int olen = 32;

	if (HMAC(EVP_sha256(), key, (int) klen, data, len, out, &olen) == NULL)
		abort();
}

/* Value of attribute `name` ("r", "s", "i", "v") in a SCRAM message; malloc'd. */
static char *
scram_attr(const char *msg, size_t len, char name)
{
	size_t		i = 0;

	while (i < len)
	{
		size_t		end = i;

		while (end < len && msg[end] != ',')
			end++;
		if (end - i >= 2 && msg[i] == name && msg[i + 1] == '=')
			return strndup(msg + i + 2, end - i - 2);
		i = end + 1;
	}
	return NULL;
}

char *
probe_scram_first(ScramClient *s)
{
	uint8_t		raw[18];
	char	   *msg;

	memset(s, 0, sizeof(*s));
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		abort();
	EVP_EncodeBlock((unsigned char *) s->nonce, raw, sizeof(raw));
	/* PostgreSQL ignores the user name in SCRAM (it comes from the startup packet) */
	if (asprintf(&s->first_bare, "n=,r=%s", s->nonce) < 0 ||
		asprintf(&msg, "n,,%s", s->first_bare) < 0)
		abort();
	return msg;
}

char *
probe_scram_final(ScramClient *s, const char *password, const char *server_first,
				  size_t len, WalsimError *err)
{
	char	   *nonce = scram_attr(server_first, len, 'r');
	char	   *salt64 = scram_attr(server_first, len, 's');
	char	   *iter = scram_attr(server_first, len, 'i');
	uint8_t		salt[256];
	int			saltlen;
	uint8_t		client_key[32];
	uint8_t		stored_key[32];
	uint8_t		server_key[32];
	uint8_t		signature[32];
	uint8_t		proof[32];
	char		proof64[64];
	char	   *auth_message = NULL;
	char	   *final = NULL;
	int32_t		iterations = 0;

	if (nonce == NULL || salt64 == NULL || iter == NULL)
	{
		walsim_error_set(err, "SCRAM server-first-message \"%.*s\" lacks r, s or i",
						 (int) len, server_first);
		goto done;
	}
	if (strncmp(nonce, s->nonce, strlen(s->nonce)) != 0)
	{
		walsim_error_set(err, "SCRAM server nonce does not start with the client nonce");
		goto done;
	}
	saltlen = strlen(salt64) * 3 / 4 < sizeof(salt) ?
		EVP_DecodeBlock(salt, (const unsigned char *) salt64, (int) strlen(salt64)) : -1;
	if (!parse_i32("i", iter, 1, INT32_MAX, &iterations, NULL) || saltlen < 0)
	{
		walsim_error_set(err, "SCRAM server-first-message has a bad salt or iteration count");
		goto done;
	}
	/* EVP_DecodeBlock counts padding bytes as data */
	for (size_t n = strlen(salt64); n > 0 && salt64[n - 1] == '='; n--)
		saltlen--;
	s->server_first = strndup(server_first, len);
	if (asprintf(&s->final_no_proof, "c=biws,r=%s", nonce) < 0 || s->server_first == NULL)
		abort();
	if (!PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, saltlen, (int) iterations,
						   EVP_sha256(), 32, s->salted))
		abort();
	hmac_sha256(s->salted, 32, "Client Key", 10, client_key);
	SHA256(client_key, 32, stored_key);
	if (asprintf(&auth_message, "%s,%s,%s", s->first_bare, s->server_first,
				 s->final_no_proof) < 0)
		abort();
	hmac_sha256(stored_key, 32, auth_message, strlen(auth_message), signature);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ signature[i];
	hmac_sha256(s->salted, 32, "Server Key", 10, server_key);
	hmac_sha256(server_key, 32, auth_message, strlen(auth_message), s->server_signature);
	EVP_EncodeBlock((unsigned char *) proof64, proof, 32);
	if (asprintf(&final, "%s,p=%s", s->final_no_proof, proof64) < 0)
		abort();
done:
	free(nonce);
	free(salt64);
	free(iter);
	free(auth_message);
	return final;
}

bool
probe_scram_verify(const ScramClient *s, const char *server_final, size_t len,
				   WalsimError *err)
{
	char	   *v = scram_attr(server_final, len, 'v');
	char		expected[64];
	bool		ok;

	EVP_EncodeBlock((unsigned char *) expected, s->server_signature, 32);
	ok = v != NULL && strcmp(v, expected) == 0;
	free(v);
	if (!ok)
		return walsim_error_set(err, "SCRAM server signature does not verify");
	return true;
}

void
probe_scram_free(ScramClient *s)
{
	free(s->first_bare);
	free(s->server_first);
	free(s->final_no_proof);
	memset(s, 0, sizeof(*s));
}
