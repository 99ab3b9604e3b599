/*
 * json.h — the JSON text builder of walsim-netd: compact JSON (no spaces)
 * on a caller's fixed buffer, for trace lines and control replies.
 *
 * Members are appended in order; json_key() puts the comma before every
 * member but the first of an object.  Strings escape '"', '\\' and control
 * characters (as \u00XX).  A full buffer truncates: the text stays
 * NUL-terminated, and a reply or trace line is then cut short rather than
 * overflowing.
 */
#ifndef WALSIM_NETD_JSON_H
#define WALSIM_NETD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct JsonBuf
{
	char	   *p;
	size_t		len;
	size_t		cap;
	bool		first;			/* no comma before the next member */
} JsonBuf;

void		json_init(JsonBuf *j, char *buf, size_t cap);
/* Text as is (punctuation, or a value built separately). */
void		json_raw(JsonBuf *j, const char *s);
/* A quoted, escaped string (no key). */
void		json_escape(JsonBuf *j, const char *s);

/* Members: "key":value, with the comma when needed. */
void		json_str(JsonBuf *j, const char *key, const char *value);
void		json_u64(JsonBuf *j, const char *key, uint64_t v);
void		json_i64(JsonBuf *j, const char *key, int64_t v);
void		json_bool(JsonBuf *j, const char *key, bool v);
/* An LSN as PostgreSQL writes it ("0/3001000"), as a string. */
void		json_lsn(JsonBuf *j, const char *key, uint64_t lsn);
/* "key": then the raw value text (an object or array built separately). */
void		json_member_raw(JsonBuf *j, const char *key, const char *raw);

#endif							/* WALSIM_NETD_JSON_H */
