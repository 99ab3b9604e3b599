/*
 * command.c — tokenizer and parser of replication commands (see command.h).
 *
 * A hand-written recursive descent over a token list: the grammar is small
 * and fixed, and an explicit parser gives error messages that name the token
 * and its offset, which a yacc grammar would not without extra work.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "walsim/lsn.h"
#include "walsim/parse.h"
#include "command.h"

#define SQLSTATE_SYNTAX_ERROR	"42601"
#define SQLSTATE_INVALID_NAME	"42602"

typedef enum TokKind
{
	TOK_END,
	TOK_WORD,					/* unquoted identifier or keyword */
	TOK_QUOTED,					/* "identifier" */
	TOK_STRING,					/* 'string' */
	TOK_LSN,					/* X/X */
	TOK_NUMBER,					/* unsigned decimal */
	TOK_PUNCT					/* ( ) , ; . */
} TokKind;

typedef struct Token
{
	TokKind		kind;
	size_t		offset;			/* in the command text */
	char		text[REPL_NAME_MAX * 2];	/* folded / unquoted text */
	uint64_t	lsn;
} Token;

typedef struct Parser
{
	const char *src;
	size_t		pos;
	Token		tok;			/* current token */
	WalsimError *err;
	const char *sqlstate;
} Parser;

static bool
syntax_error(Parser *p, const char *what)
{
	p->sqlstate = SQLSTATE_SYNTAX_ERROR;
	if (p->tok.kind == TOK_END)
		return walsim_error_set(p->err, "syntax error at end of input: expected %s", what);
	return walsim_error_set(p->err, "syntax error at or near \"%s\" (offset %zu): expected %s",
							p->tok.text, p->tok.offset, what);
}

static bool
is_hex_run(const char *s, size_t *len)
{
	size_t		n = 0;

	while (isxdigit((unsigned char) s[n]))
		n++;
	*len = n;
	return n > 0;
}

/* Read the next token into p->tok. */
static bool
next_token(Parser *p)
{
	const char *s = p->src;
	size_t		start;
	size_t		n1,
				n2;
	Token	   *t = &p->tok;

	while (isspace((unsigned char) s[p->pos]))
		p->pos++;
	/* "--" comments, as the replication scanner skips them */
	if (s[p->pos] == '-' && s[p->pos + 1] == '-')
	{
		while (s[p->pos] && s[p->pos] != '\n')
			p->pos++;
		return next_token(p);
	}
	start = p->pos;
	memset(t, 0, sizeof(*t));
	t->offset = start;
	if (s[start] == '\0')
	{
		t->kind = TOK_END;
		return true;
	}
	/* X/X wins over a word or number starting with hex digits (longest match) */
	if (is_hex_run(s + start, &n1) && s[start + n1] == '/' &&
		is_hex_run(s + start + n1 + 1, &n2))
	{
		size_t		len = n1 + 1 + n2;

		if (len >= sizeof(t->text))
			len = sizeof(t->text) - 1;
		memcpy(t->text, s + start, len);
		t->kind = TOK_LSN;
		p->pos = start + n1 + 1 + n2;
		if (!lsn_parse(t->text, &t->lsn, p->err))
		{
			p->sqlstate = SQLSTATE_SYNTAX_ERROR;
			walsim_error_prefix(p->err, "offset %zu: ", start);
			return false;
		}
		return true;
	}
	if (isdigit((unsigned char) s[start]))
	{
		size_t		n = 0;

		while (isdigit((unsigned char) s[start + n]))
			n++;
		if (n >= sizeof(t->text))
		{
			p->pos = start + n;
			p->sqlstate = SQLSTATE_SYNTAX_ERROR;
			return walsim_error_set(p->err, "number at offset %zu is too long", start);
		}
		memcpy(t->text, s + start, n);
		t->kind = TOK_NUMBER;
		p->pos = start + n;
		return true;
	}
	if (isalpha((unsigned char) s[start]) || s[start] == '_' || (unsigned char) s[start] >= 0x80)
	{
		size_t		n = 0;

		while (isalnum((unsigned char) s[start + n]) || s[start + n] == '_' ||
			   s[start + n] == '$' || (unsigned char) s[start + n] >= 0x80)
		{
			if (n < sizeof(t->text) - 1)
				t->text[n] = (char) tolower((unsigned char) s[start + n]);
			n++;
		}
		t->kind = TOK_WORD;
		p->pos = start + n;
		return true;
	}
	if (s[start] == '"' || s[start] == '\'')
	{
		char		q = s[start];
		size_t		i = start + 1;
		size_t		n = 0;

		for (;;)
		{
			if (s[i] == '\0')
			{
				p->pos = i;
				p->sqlstate = SQLSTATE_SYNTAX_ERROR;
				return walsim_error_set(p->err, "unterminated quoted %s starting at offset %zu",
										q == '"' ? "identifier" : "string", start);
			}
			if (s[i] == q)
			{
				if (s[i + 1] != q)
					break;
				i++;			/* doubled quote stands for itself */
			}
			if (n < sizeof(t->text) - 1)
				t->text[n++] = s[i];
			i++;
		}
		p->pos = i + 1;
		t->kind = q == '"' ? TOK_QUOTED : TOK_STRING;
		if (q == '"' && n == 0)
		{
			p->sqlstate = SQLSTATE_SYNTAX_ERROR;
			return walsim_error_set(p->err, "zero-length delimited identifier at offset %zu", start);
		}
		return true;
	}
	if (strchr("(),;.", s[start]) != NULL)
	{
		t->text[0] = s[start];
		t->kind = TOK_PUNCT;
		p->pos = start + 1;
		return true;
	}
	t->text[0] = s[start];
	p->sqlstate = SQLSTATE_SYNTAX_ERROR;
	return walsim_error_set(p->err, "syntax error at or near \"%c\" (offset %zu)", s[start], start);
}

static bool
is_keyword(const Parser *p, const char *kw)
{
	return p->tok.kind == TOK_WORD && strcmp(p->tok.text, kw) == 0;
}

static bool
is_punct(const Parser *p, char c)
{
	return p->tok.kind == TOK_PUNCT && p->tok.text[0] == c;
}

/* An identifier: a word or a quoted name. */
static bool
take_identifier(Parser *p, char *out, size_t outlen, const char *what)
{
	if (p->tok.kind != TOK_WORD && p->tok.kind != TOK_QUOTED)
		return syntax_error(p, what);
	if (strlen(p->tok.text) >= outlen)
	{
		p->sqlstate = SQLSTATE_INVALID_NAME;
		return walsim_error_set(p->err, "identifier at offset %zu is longer than %zu characters",
								p->tok.offset, outlen - 1);
	}
	strcpy(out, p->tok.text);
	return next_token(p);
}

static bool
take_slot_name(Parser *p, ReplCommand *cmd)
{
	if (!take_identifier(p, cmd->name, sizeof(cmd->name), "a replication slot name"))
		return false;
	if (!repl_slot_name_valid(cmd->name, p->err))
	{
		p->sqlstate = SQLSTATE_INVALID_NAME;
		return false;
	}
	return true;
}

static bool
take_timeline(Parser *p, uint32_t *tli)
{
	if (p->tok.kind != TOK_NUMBER)
		return syntax_error(p, "a timeline number");
	if (!parse_u32("timeline", p->tok.text, 1, UINT32_MAX, tli, NULL))
	{
		p->sqlstate = SQLSTATE_SYNTAX_ERROR;
		return walsim_error_set(p->err, "invalid timeline %s at offset %zu", p->tok.text, p->tok.offset);
	}
	return next_token(p);
}

/* ( name [value] [, ...] ) — generic options of CREATE_REPLICATION_SLOT */
static bool
parse_slot_options(Parser *p, ReplCommand *cmd)
{
	if (!next_token(p))
		return false;
	for (;;)
	{
		char		opt[REPL_NAME_MAX];
		bool		value = true;

		if (!take_identifier(p, opt, sizeof(opt), "an option name"))
			return false;
		if (p->tok.kind == TOK_WORD || p->tok.kind == TOK_STRING || p->tok.kind == TOK_NUMBER)
		{
			const char *v = p->tok.text;

			if (strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0)
				value = false;
			if (!next_token(p))
				return false;
		}
		if (strcmp(opt, "reserve_wal") == 0)
			cmd->reserve_wal = value;
		else if (strcmp(opt, "two_phase") != 0 && strcmp(opt, "snapshot") != 0)
		{
			p->sqlstate = SQLSTATE_SYNTAX_ERROR;
			return walsim_error_set(p->err, "unrecognized option \"%s\" in CREATE_REPLICATION_SLOT", opt);
		}
		if (is_punct(p, ')'))
			return next_token(p);
		if (!is_punct(p, ','))
			return syntax_error(p, "',' or ')'");
		if (!next_token(p))
			return false;
	}
}

static bool
parse_create_slot(Parser *p, ReplCommand *cmd)
{
	if (!take_slot_name(p, cmd))
		return false;
	if (is_keyword(p, "temporary"))
	{
		cmd->temporary = true;
		if (!next_token(p))
			return false;
	}
	if (is_keyword(p, "logical"))
	{
		cmd->logical = true;
		/* the plugin name and options follow; we refuse logical slots anyway */
		while (p->tok.kind != TOK_END)
			if (!next_token(p))
				return false;
		return true;
	}
	if (!is_keyword(p, "physical"))
		return syntax_error(p, "PHYSICAL or LOGICAL");
	if (!next_token(p))
		return false;
	if (is_keyword(p, "reserve_wal"))
	{
		cmd->reserve_wal = true;
		return next_token(p);
	}
	if (is_punct(p, '('))
		return parse_slot_options(p, cmd);
	return true;
}

static bool
parse_start(Parser *p, ReplCommand *cmd)
{
	if (is_keyword(p, "slot"))
	{
		if (!next_token(p) || !take_slot_name(p, cmd))
			return false;
		cmd->has_slot = true;
	}
	if (is_keyword(p, "logical"))
	{
		cmd->logical = true;
		while (p->tok.kind != TOK_END)
			if (!next_token(p))
				return false;
		return true;
	}
	if (is_keyword(p, "physical") && !next_token(p))
		return false;
	if (p->tok.kind != TOK_LSN)
		return syntax_error(p, "a start position X/X");
	cmd->lsn = p->tok.lsn;
	if (!next_token(p))
		return false;
	if (is_keyword(p, "timeline"))
	{
		if (!next_token(p) || !take_timeline(p, &cmd->tli))
			return false;
	}
	return true;
}

static bool
parse_show(Parser *p, ReplCommand *cmd)
{
	size_t		n;

	if (!take_identifier(p, cmd->name, sizeof(cmd->name), "a parameter name"))
		return false;
	/* dotted custom names (a.b) are one name */
	while (is_punct(p, '.'))
	{
		n = strlen(cmd->name);
		if (!next_token(p))
			return false;
		if (n + 1 >= sizeof(cmd->name))
			return syntax_error(p, "a shorter parameter name");
		cmd->name[n] = '.';
		if (!take_identifier(p, cmd->name + n + 1, sizeof(cmd->name) - n - 1, "a parameter name"))
			return false;
	}
	return true;
}

static const struct
{
	const char *keyword;
	ReplCommandKind kind;
}			commands[] =
{
	{"identify_system", REPL_IDENTIFY_SYSTEM},
	{"show", REPL_SHOW},
	{"timeline_history", REPL_TIMELINE_HISTORY},
	{"read_replication_slot", REPL_READ_REPLICATION_SLOT},
	{"create_replication_slot", REPL_CREATE_REPLICATION_SLOT},
	{"drop_replication_slot", REPL_DROP_REPLICATION_SLOT},
	{"start_replication", REPL_START_REPLICATION},
	{"base_backup", REPL_BASE_BACKUP},
};

bool
repl_command_parse(const char *text, ReplCommand *cmd, const char **sqlstate,
				   WalsimError *err)
{
	Parser		p = {.src = text, .pos = 0, .err = err, .sqlstate = NULL};
	bool		ok = false;
	size_t		i;

	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = REPL_SQL;
	*sqlstate = NULL;
	if (!next_token(&p))
	{
		/* not even one token: not a replication command, so it is SQL */
		return true;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (is_keyword(&p, commands[i].keyword))
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		return true;			/* SQL (or empty): the caller refuses it */
	cmd->kind = commands[i].kind;
	if (!next_token(&p))
		goto fail;

	switch (cmd->kind)
	{
		case REPL_IDENTIFY_SYSTEM:
			ok = true;
			break;
		case REPL_SHOW:
			ok = parse_show(&p, cmd);
			break;
		case REPL_TIMELINE_HISTORY:
			ok = take_timeline(&p, &cmd->tli);
			break;
		case REPL_READ_REPLICATION_SLOT:
			ok = take_slot_name(&p, cmd);
			break;
		case REPL_CREATE_REPLICATION_SLOT:
			ok = parse_create_slot(&p, cmd);
			break;
		case REPL_DROP_REPLICATION_SLOT:
			ok = take_slot_name(&p, cmd);
			if (ok && is_keyword(&p, "wait"))
			{
				cmd->wait = true;
				ok = next_token(&p);
			}
			break;
		case REPL_START_REPLICATION:
			ok = parse_start(&p, cmd);
			break;
		case REPL_BASE_BACKUP:
			/* refused by the caller whatever its options */
			while (p.tok.kind != TOK_END && (ok = next_token(&p)))
				;
			ok = true;
			break;
		case REPL_SQL:
			break;
	}
	if (!ok)
		goto fail;
	if (is_punct(&p, ';') && !next_token(&p))
		goto fail;
	if (p.tok.kind != TOK_END)
	{
		syntax_error(&p, "end of command");
		goto fail;
	}
	return true;

fail:
	*sqlstate = p.sqlstate ? p.sqlstate : SQLSTATE_SYNTAX_ERROR;
	return false;
}

const char *
repl_command_name(ReplCommandKind kind)
{
	switch (kind)
	{
		case REPL_IDENTIFY_SYSTEM:
			return "IDENTIFY_SYSTEM";
		case REPL_SHOW:
			return "SHOW";
		case REPL_TIMELINE_HISTORY:
			return "TIMELINE_HISTORY";
		case REPL_READ_REPLICATION_SLOT:
			return "READ_REPLICATION_SLOT";
		case REPL_CREATE_REPLICATION_SLOT:
			return "CREATE_REPLICATION_SLOT";
		case REPL_DROP_REPLICATION_SLOT:
			return "DROP_REPLICATION_SLOT";
		case REPL_START_REPLICATION:
			return "START_REPLICATION";
		case REPL_BASE_BACKUP:
			return "BASE_BACKUP";
		case REPL_SQL:
			return "SQL";
	}
	return "?";
}

bool
repl_slot_name_valid(const char *name, WalsimError *err)
{
	size_t		len = strlen(name);

	if (len == 0)
		return walsim_error_set(err, "replication slot name \"%s\" is too short", name);
	if (len >= REPL_NAME_MAX)
		return walsim_error_set(err, "replication slot name \"%s\" is too long", name);
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return walsim_error_set(err, "replication slot name \"%s\" contains invalid character", name);
	return true;
}
