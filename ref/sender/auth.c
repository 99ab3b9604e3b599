/*
 * auth.c — passfile parsing and the MD5 password hash (see auth.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "walsim/textfile.h"
#include "auth.h"

#define PASSFILE_MAX (1024 * 1024)

bool
auth_method_parse(const char *text, AuthMethod *method, WalsimError *err)
{
	if (strcmp(text, "trust") == 0)
		*method = AUTH_TRUST;
	else if (strcmp(text, "password") == 0)
		*method = AUTH_PASSWORD;
	else if (strcmp(text, "md5") == 0)
		*method = AUTH_MD5;
	else if (strcmp(text, "scram-sha-256") == 0)
		*method = AUTH_SCRAM;
	else
		return walsim_error_set(err, "--auth \"%s\": expected trust, password, md5 or scram-sha-256", text);
	return true;
}

const char *
auth_method_name(AuthMethod method)
{
	switch (method)
	{
		case AUTH_TRUST:
			return "trust";
		case AUTH_PASSWORD:
			return "password";
		case AUTH_MD5:
			return "md5";
		case AUTH_SCRAM:
			return "scram-sha-256";
	}
	return "?";
}

/*
 * Split one line into at most 5 colon-separated fields, undoing the .pgpass
 * escapes.  Returns the number of fields, or -1 when a field is too long.
 */
static int
split_fields(const char *line, char fields[5][AUTH_FIELD_MAX])
{
	int			nf = 0;
	size_t		n = 0;

	memset(fields, 0, 5 * AUTH_FIELD_MAX);
	for (const char *p = line; *p; p++)
	{
		char		c = *p;

		if (c == '\\' && (p[1] == ':' || p[1] == '\\'))
			c = *++p;
		else if (c == ':' && nf < 4)
		{
			nf++;
			n = 0;
			continue;
		}
		if (n >= AUTH_FIELD_MAX - 1)
			return -1;
		fields[nf][n++] = c;
	}
	return nf + 1;
}

bool
auth_passfile_parse(const char *text, AuthConfig *cfg, WalsimError *err)
{
	const char *p = text;
	int			lineno = 0;

	cfg->nentries = 0;
	cfg->entries = NULL;
	while (*p)
	{
		size_t		len = strcspn(p, "\n");
		char		line[4 * AUTH_FIELD_MAX];
		char		fields[5][AUTH_FIELD_MAX];
		int			nf;
		AuthEntry  *e;

		lineno++;
		if (len >= sizeof(line))
		{
			auth_config_free(cfg);
			return walsim_error_set(err, "line %d: longer than %zu characters", lineno, sizeof(line) - 1);
		}
		memcpy(line, p, len);
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		p += len + (p[len] == '\n');
		if (line[0] == '\0' || line[0] == '#')
			continue;
		nf = split_fields(line, fields);
		if (nf != 2 && nf != 5)
		{
			auth_config_free(cfg);
			if (nf < 0)
				return walsim_error_set(err, "line %d: a field is longer than %d characters", lineno, AUTH_FIELD_MAX - 1);
			return walsim_error_set(err, "line %d: expected \"role:password\" or \"host:port:database:role:password\", found %d fields",
									lineno, nf);
		}
		e = realloc(cfg->entries, (size_t) (cfg->nentries + 1) * sizeof(AuthEntry));
		if (e == NULL)
		{
			auth_config_free(cfg);
			return walsim_error_set(err, "out of memory");
		}
		cfg->entries = e;
		e = &cfg->entries[cfg->nentries++];
		strcpy(e->role, fields[nf - 2]);
		strcpy(e->password, fields[nf - 1]);
		if (e->role[0] == '\0')
		{
			auth_config_free(cfg);
			return walsim_error_set(err, "line %d: empty role name", lineno);
		}
	}
	if (cfg->nentries == 0)
		return walsim_error_set(err, "no role:password line");
	return true;
}

bool
auth_passfile_load(const char *path, AuthConfig *cfg, WalsimError *err)
{
	FILE	   *f;
	struct stat st;
	char	   *text;
	size_t		n;
	bool		ok;

	f = fopen(path, "r");
	if (f == NULL)
		return walsim_error_set(err, "password file \"%s\": %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
	{
		fclose(f);
		return walsim_error_set(err, "password file \"%s\": not a regular file", path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		fclose(f);
		return walsim_error_set(err, "password file \"%s\" has group or world access; permissions should be u=rw (0600) or less",
								path);
	}
	if (st.st_size > PASSFILE_MAX)
	{
		fclose(f);
		return walsim_error_set(err, "password file \"%s\": larger than %d bytes", path, PASSFILE_MAX);
	}
	ok = textfile_read(f, path, PASSFILE_MAX, &text, &n, err);
	fclose(f);
	if (!ok)
		return false;
	if (strlen(text) != n)
	{
		free(text);
		return walsim_error_set(err, "password file \"%s\": contains a NUL byte", path);
	}
	ok = auth_passfile_parse(text, cfg, err);
	free(text);
	if (!ok)
		walsim_error_prefix(err, "password file \"%s\": ", path);
	return ok;
}

void
auth_config_free(AuthConfig *cfg)
{
	free(cfg->entries);
	cfg->entries = NULL;
	cfg->nentries = 0;
}

const char *
auth_lookup(const AuthConfig *cfg, const char *role)
{
	for (int i = 0; i < cfg->nentries; i++)
		if (strcmp(cfg->entries[i].role, role) == 0 || strcmp(cfg->entries[i].role, "*") == 0)
			return cfg->entries[i].password;
	return NULL;
}

static void
md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	EVP_Digest(data, len, digest, &dlen, EVP_md5(), NULL);
	for (unsigned int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
}

void
auth_md5_response(const char *password, const char *role,
				  const uint8_t salt[4], char out[36])
{
	char		buf[2 * AUTH_FIELD_MAX + 40];
	char		inner[33];
	size_t		plen = strnlen(password, AUTH_FIELD_MAX);
	size_t		rlen = strnlen(role, AUTH_FIELD_MAX);

	/* md5(password || role), then md5(hex || salt) */
	memcpy(buf, password, plen);
	memcpy(buf + plen, role, rlen);
	md5_hex(buf, plen + rlen, inner);
	memcpy(buf, inner, 32);
	memcpy(buf + 32, salt, 4);
	strcpy(out, "md5");
	md5_hex(buf, 36, out + 3);
}
