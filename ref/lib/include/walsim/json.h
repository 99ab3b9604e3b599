/*
 * json.h — the one JSON writer of walsim's C programs: members appended to
 * a caller's buffer, for trace lines, event logs, control replies and the
 * probe's transcript.
 *
 * A JsonBuf never allocates.  In its bounded form (json_init) text that
 * does not fit is cut and `overflow` is set; the buffer stays NUL-terminated.
 * In its stream form (json_init_stream) a full buffer is written to a FILE
 * and filling goes on, so a line of any length costs one fixed buffer.
 *
 * Members are written with a key; a NULL key writes a bare value (an array
 * element, or a top-level value).  Commas are placed by the writer: `first`
 * says whether the container being filled has no member yet.
 *
 *   JsonBuf j;
 *   char buf[256];
 *   json_init(&j, buf, sizeof(buf));
 *   json_object_begin(&j, NULL);
 *   json_str(&j, "event", "start");
 *   json_lsn(&j, "lsn", lsn);              // "lsn":"0/3000000"
 *   json_array_begin(&j, "tli");
 *   json_u64(&j, NULL, 1);
 *   json_array_end(&j);
 *   json_object_end(&j);                   // {"event":"start","lsn":"0/3000000","tli":[1]}
 *
 * Strings are written as they are (UTF-8 passes through) with '"', '\\'
 * and control characters escaped, the latter as \u00XX; json_bytes()
 * instead treats its input as raw bytes (Latin-1: 0x7F and above as
 * \u00XX), for data off the wire.
 */
#ifndef WALSIM_JSON_H
#define WALSIM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct JsonBuf
{
	char	   *p;				/* the text; NUL-terminated when cap > 0 */
	size_t		len;			/* bytes in p (since the last flush of a stream) */
	size_t		cap;			/* size of p, the NUL included */
	bool		first;			/* no comma before the next member */
	bool		overflow;		/* bounded form: something was cut */
	size_t		max_string;		/* cut string values after this many bytes (0: never) */
	FILE	   *sink;			/* stream form: where a full buffer goes */
	bool		sink_failed;	/* a write to sink failed */
} JsonBuf;

/* Bounded form on buf[cap]; cap 0 writes nothing. */
void		json_init(JsonBuf *j, char *buf, size_t cap);

/* Stream form: buf[cap] (cap >= 2) is written to sink whenever it is full. */
void		json_init_stream(JsonBuf *j, char *buf, size_t cap, FILE *sink);

/* Stream form: write what is buffered to the sink; false on a write error. */
bool		json_flush(JsonBuf *j);

/* Raw text, no comma, no quoting. */
void		json_raw(JsonBuf *j, const char *s);
void		json_rawn(JsonBuf *j, const char *s, size_t n);

/* A quoted, escaped string (no key, no comma). */
void		json_escape(JsonBuf *j, const char *s);

/* The comma (unless first) and "key": ; a NULL key writes only the comma. */
void		json_key(JsonBuf *j, const char *key);

/* Members ("key":value) or, with a NULL key, values. */
void		json_str(JsonBuf *j, const char *key, const char *value);	/* NULL -> null */
void		json_bytes(JsonBuf *j, const char *key, const uint8_t *data, size_t n);
void		json_hex(JsonBuf *j, const char *key, const uint8_t *data, size_t n);
void		json_u64(JsonBuf *j, const char *key, uint64_t v);
void		json_i64(JsonBuf *j, const char *key, int64_t v);
void		json_bool(JsonBuf *j, const char *key, bool v);
void		json_null(JsonBuf *j, const char *key);
/* An LSN as PostgreSQL writes it, as a string: "0/3000000". */
void		json_lsn(JsonBuf *j, const char *key, uint64_t lsn);
/* %.*g with digits significant digits; NaN and infinities as null. */
void		json_double(JsonBuf *j, const char *key, double v, int digits);
/* %.*f with decimals digits after the point; NaN and infinities as null. */
void		json_fixed(JsonBuf *j, const char *key, double v, int decimals);
/* "key": then raw value text (an object or array built elsewhere) */
void		json_member_raw(JsonBuf *j, const char *key, const char *raw);

/* Nested containers: begin writes "key":{ (or { with a NULL key). */
void		json_object_begin(JsonBuf *j, const char *key);
void		json_object_end(JsonBuf *j);
void		json_array_begin(JsonBuf *j, const char *key);
void		json_array_end(JsonBuf *j);

#endif							/* WALSIM_JSON_H */
