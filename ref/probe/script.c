/*
 * script.c — parser of walsim-probe's step language (see script.h).
 */
#include "script.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/parse.h"

/* A line split into words; the words point into a private copy. */
typedef struct Words
{
	char	   *copy;
	char	   *word[PROBE_MAX_PARAMS + 2];
	int			n;
	const char *rest_after_first;	/* the line after the first word (query text) */
} Words;

static bool
split_words(const char *line, int lineno, Words *w, WalsimError *err)
{
	char	   *p;

	memset(w, 0, sizeof(*w));
	w->copy = strdup(line);
	if (w->copy == NULL)
		abort();
	p = w->copy;
	while (*p)
	{
		while (*p && isspace((unsigned char) *p))
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (w->n == (int) (sizeof(w->word) / sizeof(w->word[0])))
		{
			free(w->copy);
			return walsim_error_set(err, "line %d: too many words", lineno);
		}
		if (w->n == 1)
			w->rest_after_first = line + (p - w->copy);
		w->word[w->n++] = p;
		while (*p && !isspace((unsigned char) *p))
			p++;
	}
	return true;
}

/* A whole number from 0 to max in a script word; the message names the line. */
static bool
parse_number(const char *s, int lineno, const char *what, uint64_t max, uint64_t *out,
			 WalsimError *err)
{
	if (parse_u64(what, s, 0, max, out, err))
		return true;
	walsim_error_prefix(err, "line %d: ", lineno);
	return false;
}

static bool
parse_status_lsn(const char *s, int lineno, uint64_t *out, WalsimError *err)
{
	if (strcmp(s, "received") == 0)
	{
		*out = PROBE_LSN_RECEIVED;
		return true;
	}
	if (!lsn_parse(s, out, err))
	{
		walsim_error_prefix(err, "line %d: ", lineno);
		return false;
	}
	return true;
}

bool
probe_decode_hex(const char *hex, uint8_t **out, size_t *len, WalsimError *err)
{
	size_t		n = strlen(hex);
	uint8_t    *buf;

	if (n % 2 != 0)
		return walsim_error_set(err, "hex \"%.32s\" has an odd number of digits", hex);
	buf = malloc(n / 2 + 1);
	if (buf == NULL)
		abort();
	for (size_t i = 0; i < n; i += 2)
	{
		char		pair[3] = {hex[i], hex[i + 1], '\0'};

		if (!isxdigit((unsigned char) pair[0]) || !isxdigit((unsigned char) pair[1]))
		{
			free(buf);
			return walsim_error_set(err, "hex \"%.32s\": invalid digit at offset %zu",
									hex, isxdigit((unsigned char) pair[0]) ? i + 1 : i);
		}
		buf[i / 2] = (uint8_t) strtoul(pair, NULL, 16);
	}
	*out = buf;
	*len = n / 2;
	return true;
}

static bool
parse_wait_types(const char *s, int lineno, ProbeStep *step, WalsimError *err)
{
	const char *p = s;

	while (*p)
	{
		const char *comma = strchr(p, ',');
		size_t		n = comma ? (size_t) (comma - p) : strlen(p);

		if (step->nwait == PROBE_MAX_WAIT)
			return walsim_error_set(err, "line %d: more than %d message types",
									lineno, PROBE_MAX_WAIT);
		if (n == 5 && strncmp(p, "close", 5) == 0)
			step->wait_for[step->nwait++] = PROBE_WAIT_CLOSE;
		else if (n == 1 && isalpha((unsigned char) *p))
			step->wait_for[step->nwait++] = *p;
		else
			return walsim_error_set(err, "line %d: \"%.*s\" is not a message type "
									"(one letter, or \"close\")", lineno, (int) n, p);
		p += n;
		if (*p == ',')
			p++;
	}
	if (step->nwait == 0)
		return walsim_error_set(err, "line %d: wait needs message types", lineno);
	return true;
}

static bool
want_words(const Words *w, int lineno, int min, int max, WalsimError *err)
{
	if (w->n - 1 < min || w->n - 1 > max)
	{
		if (min == max)
			return walsim_error_set(err, "line %d: %s takes %d argument%s, not %d",
									lineno, w->word[0], min, min == 1 ? "" : "s", w->n - 1);
		return walsim_error_set(err, "line %d: %s takes %d to %d arguments, not %d",
								lineno, w->word[0], min, max, w->n - 1);
	}
	return true;
}

static bool
parse_words(const Words *w, int lineno, ProbeStep *step, WalsimError *err)
{
	const char *cmd = w->word[0];
	uint64_t	v;

	if (strcmp(cmd, "startup") == 0)
	{
		step->kind = STEP_STARTUP;
		for (int i = 1; i < w->n; i++)
		{
			char	   *eq = strchr(w->word[i], '=');

			if (eq == NULL || eq == w->word[i])
				return walsim_error_set(err, "line %d: startup parameter \"%s\" is not key=value",
										lineno, w->word[i]);
			if (strncmp(w->word[i], "protocol=", 9) == 0)
			{
				/* the protocol version to ask for (3.2: PostgreSQL 18), not a parameter */
				unsigned int major, minor;
				char		extra;

				if (sscanf(eq + 1, "%u.%u%c", &major, &minor, &extra) != 2 || major > 0xFFFF ||
					minor > 0xFFFF)
					return walsim_error_set(err, "line %d: protocol \"%s\" is not MAJOR.MINOR", lineno, eq + 1);
				step->protocol = (major << 16) | minor;
				continue;
			}
			if (step->nparams == PROBE_MAX_PARAMS)
				return walsim_error_set(err, "line %d: too many startup parameters", lineno);
			step->keys[step->nparams] = strndup(w->word[i], (size_t) (eq - w->word[i]));
			step->values[step->nparams] = strdup(eq + 1);
			if (!step->keys[step->nparams] || !step->values[step->nparams])
				abort();
			step->nparams++;
		}
		return true;
	}
	if (strcmp(cmd, "ssl") == 0 || strcmp(cmd, "gssenc") == 0 ||
		strcmp(cmd, "copydone") == 0 || strcmp(cmd, "terminate") == 0 ||
		strcmp(cmd, "close") == 0)
	{
		step->kind = cmd[0] == 's' ? STEP_SSL : cmd[0] == 'g' ? STEP_GSSENC :
			strcmp(cmd, "copydone") == 0 ? STEP_COPYDONE :
			cmd[0] == 't' ? STEP_TERMINATE : STEP_CLOSE;
		return want_words(w, lineno, 0, 0, err);
	}
	if (strcmp(cmd, "query") == 0)
	{
		step->kind = STEP_QUERY;
		if (w->rest_after_first == NULL)
			return walsim_error_set(err, "line %d: query needs its text", lineno);
		step->text = strdup(w->rest_after_first);
		if (step->text == NULL)
			abort();
		/* trailing blanks are not part of the command */
		for (size_t n = strlen(step->text); n > 0 && isspace((unsigned char) step->text[n - 1]); n--)
			step->text[n - 1] = '\0';
		return true;
	}
	if (strcmp(cmd, "status") == 0)
	{
		step->kind = STEP_STATUS;
		if (!want_words(w, lineno, 3, 4, err))
			return false;
		for (int i = 0; i < 3; i++)
			if (!parse_status_lsn(w->word[i + 1], lineno, &step->lsn[i], err))
				return false;
		if (w->n == 5)
		{
			if (!parse_number(w->word[4], lineno, "replyRequested", 1, &v, err))
				return false;
			step->reply = v == 1;
		}
		return true;
	}
	if (strcmp(cmd, "feedback") == 0)
	{
		step->kind = STEP_FEEDBACK;
		if (!want_words(w, lineno, 4, 4, err))
			return false;
		for (int i = 0; i < 4; i++)
		{
			if (!parse_number(w->word[i + 1], lineno, "xid", UINT32_MAX, &v, err))
				return false;
			step->xid[i] = (uint32_t) v;
		}
		return true;
	}
	if (strcmp(cmd, "copydata") == 0 || strcmp(cmd, "raw") == 0)
	{
		step->kind = cmd[0] == 'c' ? STEP_COPYDATA : STEP_RAW;
		if (!want_words(w, lineno, 1, 1, err))
			return false;
		if (!probe_decode_hex(w->word[1], &step->bytes, &step->nbytes, err))
		{
			walsim_error_prefix(err, "line %d: ", lineno);
			return false;
		}
		return true;
	}
	if (strcmp(cmd, "msg") == 0)
	{
		step->kind = STEP_MSG;
		if (!want_words(w, lineno, 1, 2, err))
			return false;
		if (strlen(w->word[1]) != 1)
			return walsim_error_set(err, "line %d: message type \"%s\" is not one character",
									lineno, w->word[1]);
		step->msg_type = w->word[1][0];
		if (!probe_decode_hex(w->n == 3 ? w->word[2] : "", &step->bytes, &step->nbytes, err))
		{
			walsim_error_prefix(err, "line %d: ", lineno);
			return false;
		}
		return true;
	}
	if (strcmp(cmd, "wait") == 0)
	{
		step->kind = STEP_WAIT;
		if (!want_words(w, lineno, 2, 2, err) ||
			!parse_wait_types(w->word[1], lineno, step, err) ||
			!parse_number(w->word[2], lineno, "timeout", INT_MAX, &v, err))
			return false;
		step->ms = (int) v;
		return true;
	}
	if (strcmp(cmd, "read") == 0 || strcmp(cmd, "sleep") == 0)
	{
		step->kind = cmd[0] == 'r' ? STEP_READ : STEP_SLEEP;
		if (!want_words(w, lineno, 1, 1, err) ||
			!parse_number(w->word[1], lineno, "duration", INT_MAX, &v, err))
			return false;
		step->ms = (int) v;
		return true;
	}
	if (strcmp(cmd, "autoreply") == 0)
	{
		step->kind = STEP_AUTOREPLY;
		if (!want_words(w, lineno, 1, 1, err))
			return false;
		if (strcmp(w->word[1], "on") != 0 && strcmp(w->word[1], "off") != 0)
			return walsim_error_set(err, "line %d: autoreply takes on or off, not \"%s\"",
									lineno, w->word[1]);
		step->reply = strcmp(w->word[1], "on") == 0;
		return true;
	}
	if (strcmp(cmd, "stream") == 0)
	{
		step->kind = STEP_STREAM;
		if (!want_words(w, lineno, 2, 2, err))
			return false;
		if (!lsn_parse(w->word[1], &step->lsn[0], err))
		{
			walsim_error_prefix(err, "line %d: ", lineno);
			return false;
		}
		if (!parse_number(w->word[2], lineno, "timeout", INT_MAX, &v, err))
			return false;
		step->ms = (int) v;
		return true;
	}
	return walsim_error_set(err, "line %d: unknown step \"%s\"", lineno, cmd);
}

bool
probe_parse_line(const char *line, int lineno, ProbeStep *step, bool *empty,
				 WalsimError *err)
{
	Words		w;
	bool		ok;

	memset(step, 0, sizeof(*step));
	step->line = lineno;
	*empty = false;
	if (!split_words(line, lineno, &w, err))
		return false;
	if (w.n == 0 || w.word[0][0] == '#')
	{
		*empty = true;
		free(w.copy);
		return true;
	}
	ok = parse_words(&w, lineno, step, err);
	free(w.copy);
	if (!ok)
		probe_step_free(step);
	return ok;
}

bool
probe_parse_script(const char *text, ProbeScript *script, WalsimError *err)
{
	const char *p = text;
	int			lineno = 0;
	int			cap = 0;

	script->steps = NULL;
	script->nsteps = 0;
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		n = nl ? (size_t) (nl - p) : strlen(p);
		char	   *line = strndup(p, n);
		ProbeStep	step;
		bool		empty;
		bool		ok;

		if (line == NULL)
			abort();
		lineno++;
		ok = probe_parse_line(line, lineno, &step, &empty, err);
		free(line);
		if (!ok)
		{
			probe_script_free(script);
			return false;
		}
		if (!empty)
		{
			if (script->nsteps == cap)
			{
				cap = cap ? cap * 2 : 16;
				script->steps = realloc(script->steps, (size_t) cap * sizeof(ProbeStep));
				if (script->steps == NULL)
					abort();
			}
			script->steps[script->nsteps++] = step;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	return true;
}

void
probe_step_free(ProbeStep *step)
{
	for (int i = 0; i < step->nparams; i++)
	{
		free(step->keys[i]);
		free(step->values[i]);
	}
	step->nparams = 0;
	free(step->text);
	step->text = NULL;
	free(step->bytes);
	step->bytes = NULL;
}

void
probe_script_free(ProbeScript *script)
{
	for (int i = 0; i < script->nsteps; i++)
		probe_step_free(&script->steps[i]);
	free(script->steps);
	script->steps = NULL;
	script->nsteps = 0;
}
