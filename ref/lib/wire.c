/*
 * wire.c — PostgreSQL protocol 3.0 framing: incremental decoder, body
 * parsers and encoders (see walsim/wire.h).
 *
 * The decoder is a small state machine over the byte stream.  Every decision
 * it takes (where a message starts, whether a length is legal, when a
 * message is reported) depends only on the bytes seen so far and never on
 * how they were split into pieces, which is what makes "one byte at a time"
 * and "all at once" give the same messages.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/wire.h"

enum
{
	ST_STARTUP_HDR,				/* untyped: Int32 length, Int32 code */
	ST_TYPED_HDR,				/* Byte1 type, Int32 length */
	ST_ANSWER,					/* one byte answering SSL/GSSENC */
	ST_BODY,					/* collecting the reported part of a body */
	ST_SKIP,					/* passing over the unreported rest of a body */
	ST_CLOSED					/* after CancelRequest: nothing may follow */
};

/* ----------------------------------------------------------------- helpers */

uint16_t
wire_be16(const uint8_t *p)
{
	return (uint16_t) ((p[0] << 8) | p[1]);
}

uint32_t
wire_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

uint64_t
wire_be64(const uint8_t *p)
{
	return ((uint64_t) wire_be32(p) << 32) | wire_be32(p + 4);
}

void
wire_store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

void
wire_store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

void
wire_store_be64(uint8_t *p, uint64_t v)
{
	wire_store_be32(p, (uint32_t) (v >> 32));
	wire_store_be32(p + 4, (uint32_t) v);
}

/* A printable rendering of a type byte for error messages. */
static void
type_text(char *buf, size_t len, char type)
{
	unsigned char c = (unsigned char) type;

	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, len, "'%c'", c);
	else
		snprintf(buf, len, "0x%02X", c);
}

const char *
wire_message_name(WireDirection dir, WireKind kind, char type)
{
	switch (kind)
	{
		case WIRE_MSG_STARTUP:
			return "StartupMessage";
		case WIRE_MSG_SSL_REQUEST:
			return "SSLRequest";
		case WIRE_MSG_GSSENC_REQUEST:
			return "GSSENCRequest";
		case WIRE_MSG_CANCEL_REQUEST:
			return "CancelRequest";
		case WIRE_MSG_ANSWER:
			return type == 'S' ? "SSL/GSS accepted" : "SSL/GSS refused";
		case WIRE_MSG_TYPED:
			break;
	}
	if (dir == WIRE_FRONTEND)
	{
		switch (type)
		{
			case 'Q': return "Query";
			case 'd': return "CopyData";
			case 'c': return "CopyDone";
			case 'f': return "CopyFail";
			case 'X': return "Terminate";
			case 'p': return "PasswordMessage";
			case 'P': return "Parse";
			case 'B': return "Bind";
			case 'E': return "Execute";
			case 'D': return "Describe";
			case 'S': return "Sync";
			case 'H': return "Flush";
			case 'C': return "Close";
			case 'F': return "FunctionCall";
			default: return "unknown";
		}
	}
	switch (type)
	{
		case 'R': return "Authentication";
		case 'S': return "ParameterStatus";
		case 'K': return "BackendKeyData";
		case 'Z': return "ReadyForQuery";
		case 'T': return "RowDescription";
		case 'D': return "DataRow";
		case 'C': return "CommandComplete";
		case 'E': return "ErrorResponse";
		case 'N': return "NoticeResponse";
		case 'W': return "CopyBothResponse";
		case 'H': return "CopyOutResponse";
		case 'G': return "CopyInResponse";
		case 'd': return "CopyData";
		case 'c': return "CopyDone";
		case 'v': return "NegotiateProtocolVersion";
		case 'I': return "EmptyQueryResponse";
		case 'A': return "NotificationResponse";
		case '1': return "ParseComplete";
		case '2': return "BindComplete";
		case '3': return "CloseComplete";
		case 'n': return "NoData";
		case 't': return "ParameterDescription";
		case 's': return "PortalSuspended";
		case 'V': return "FunctionCallResponse";
		default: return "unknown";
	}
}

/* ----------------------------------------------------------------- decoder */

static void next_header_state(WireDecoder *d);

void
wire_decoder_init(WireDecoder *d, WireDirection dir, uint32_t max_length,
				  uint32_t capture)
{
	memset(d, 0, sizeof(*d));
	d->dir = dir;
	d->max_length = max_length ? max_length : WIRE_DEFAULT_MAX_LENGTH;
	d->capture = capture ? capture : WIRE_DEFAULT_CAPTURE;
	if (dir == WIRE_FRONTEND)
	{
		d->state = ST_STARTUP_HDR;
		d->hdr_need = 8;
	}
	else
	{
		d->state = ST_TYPED_HDR;
		d->hdr_need = 5;
	}
}

void
wire_decoder_free(WireDecoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->buf_cap = 0;
}

void
wire_decoder_expect_answer(WireDecoder *d)
{
	d->expect_answer = true;
	if (d->state == ST_TYPED_HDR && d->hdr_have == 0)
	{
		d->state = ST_ANSWER;
		d->hdr_need = 1;
	}
}

bool
wire_decoder_in_message(const WireDecoder *d)
{
	return d->state == ST_BODY || d->state == ST_SKIP ||
		((d->state == ST_STARTUP_HDR || d->state == ST_TYPED_HDR) &&
		 d->hdr_have > 0);
}

uint64_t
wire_decoder_remaining(const WireDecoder *d)
{
	if (d->state == ST_BODY || d->state == ST_SKIP)
		return (uint64_t) d->cur_len - d->body_have;
	return 0;
}

bool
wire_decoder_skip(WireDecoder *d, uint64_t n)
{
	if (d->failed || d->state != ST_SKIP || n > (uint64_t) d->cur_len - d->body_have)
		return false;
	d->body_have += (uint32_t) n;
	d->offset += n;
	if (d->body_have == d->cur_len)
		next_header_state(d);
	return true;
}

/* Record and return a failure; the decoder stays failed afterwards. */
static WireStatus
decoder_fail(WireDecoder *d, WalsimError *err, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static WireStatus
decoder_fail(WireDecoder *d, WalsimError *err, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
	va_end(ap);
	d->failed = true;
	walsim_error_set(err, "%s", d->last_error);
	return WIRE_FAILED;
}

/* After a message's last byte: where the stream goes next. */
static void
next_header_state(WireDecoder *d)
{
	d->hdr_have = 0;
	if (d->dir == WIRE_BACKEND && d->expect_answer)
	{
		d->state = ST_ANSWER;
		d->hdr_need = 1;
	}
	else if (d->state == ST_CLOSED)
		return;
	else
	{
		d->state = ST_TYPED_HDR;
		d->hdr_need = 5;
	}
}

static void
fill_message(WireDecoder *d, WireMessage *msg, WireKind kind, uint32_t code,
			 uint32_t header_len, const uint8_t *body, uint32_t avail)
{
	msg->kind = kind;
	msg->type = kind == WIRE_MSG_TYPED || kind == WIRE_MSG_ANSWER ? d->cur_type : 0;
	msg->code = code;
	msg->offset = d->cur_offset;
	msg->header_len = header_len;
	msg->body_len = d->cur_len;
	msg->size = (uint64_t) header_len + d->cur_len;
	msg->body = body;
	msg->body_avail = avail;
	msg->body_complete = avail == d->cur_len;
	msg->index = d->nmessages++;
}

/*
 * The header just completed: validate it and set up the body.  Returns
 * WIRE_GOT_MESSAGE for a message without body bytes to wait for (filled into
 * msg), WIRE_NEED_MORE to go on collecting, WIRE_FAILED on a bad header.
 */
static WireStatus
header_done(WireDecoder *d, WireMessage *msg, WalsimError *err)
{
	char		tbuf[8];

	if (d->state == ST_ANSWER)
	{
		char		c = (char) d->hdr[0];

		d->expect_answer = false;
		if (c == 'N' || c == 'S' || c == 'G')
		{
			d->cur_type = c;
			d->cur_len = 0;
			fill_message(d, msg, WIRE_MSG_ANSWER, 0, 1, NULL, 0);
			next_header_state(d);
			return WIRE_GOT_MESSAGE;
		}
		if (c == 'E')
		{
			/* a pre-SSL server answers with an ErrorResponse: typed from here */
			d->state = ST_TYPED_HDR;
			d->hdr_need = 5;
			return WIRE_NEED_MORE;
		}
		type_text(tbuf, sizeof(tbuf), c);
		return decoder_fail(d, err,
							"answer to SSL/GSSENC request at stream offset %llu: "
							"expected 'N', 'S', 'G' or 'E', got %s",
							(unsigned long long) d->cur_offset, tbuf);
	}

	if (d->state == ST_STARTUP_HDR)
	{
		uint32_t	len = wire_be32(d->hdr);
		uint32_t	code = wire_be32(d->hdr + 4);
		WireKind	kind;

		/* the length was range-checked when its 4 bytes arrived */
		d->cur_type = 0;
		d->cur_len = len - 8;
		if (code == WIRE_SSL_REQUEST_CODE || code == WIRE_GSSENC_REQUEST_CODE)
		{
			kind = code == WIRE_SSL_REQUEST_CODE ? WIRE_MSG_SSL_REQUEST : WIRE_MSG_GSSENC_REQUEST;
			if (len != 8)
				return decoder_fail(d, err,
									"%s at stream offset %llu: length %u, expected 8",
									wire_message_name(d->dir, kind, 0),
									(unsigned long long) d->cur_offset, len);
			fill_message(d, msg, kind, code, 8, NULL, 0);
			d->hdr_have = 0;	/* another startup packet follows */
			return WIRE_GOT_MESSAGE;
		}
		if (code == WIRE_CANCEL_REQUEST_CODE)
		{
			/* 3.0: a 4-byte key; 3.2 (PostgreSQL 18): 4 to 256 bytes */
			if (len < 16 || len > 12 + WIRE_MAX_CANCEL_KEY)
				return decoder_fail(d, err,
									"CancelRequest at stream offset %llu: length %u, expected 16 to %u",
									(unsigned long long) d->cur_offset, len, 12 + WIRE_MAX_CANCEL_KEY);
			kind = WIRE_MSG_CANCEL_REQUEST;
		}
		else
			kind = WIRE_MSG_STARTUP;
		d->cur_kind = (int) kind;	/* the code stays in hdr[4..8) */
		d->want = d->cur_len;
		d->body_have = 0;
		d->state = ST_BODY;
		return WIRE_NEED_MORE;
	}

	/* typed header */
	{
		uint32_t	len = wire_be32(d->hdr + 1);

		d->cur_type = (char) d->hdr[0];
		d->cur_kind = WIRE_MSG_TYPED;
		if (len < 4)
		{
			type_text(tbuf, sizeof(tbuf), d->cur_type);
			return decoder_fail(d, err,
								"message type %s at stream offset %llu: length %u is below the minimum 4",
								tbuf, (unsigned long long) d->cur_offset, len);
		}
		if (len > d->max_length)
		{
			type_text(tbuf, sizeof(tbuf), d->cur_type);
			return decoder_fail(d, err,
								"message type %s at stream offset %llu: length %u exceeds the limit %u",
								tbuf, (unsigned long long) d->cur_offset, len,
								d->max_length);
		}
		d->cur_len = len - 4;
		d->want = d->cur_len < d->capture ? d->cur_len : d->capture;
		d->body_have = 0;
		d->state = ST_BODY;
		return WIRE_NEED_MORE;
	}
}

/* The reported part of the body is complete (at body). */
static void
body_done(WireDecoder *d, WireMessage *msg, const uint8_t *body)
{
	if (d->cur_kind != WIRE_MSG_TYPED)
	{
		/* untyped: startup or cancel request */
		WireKind	kind = (WireKind) d->cur_kind;
		uint32_t	code = wire_be32(d->hdr + 4);

		d->cur_kind = WIRE_MSG_TYPED;
		fill_message(d, msg, kind, code, 8, body, d->want);
		if (kind == WIRE_MSG_CANCEL_REQUEST)
		{
			d->state = ST_CLOSED;
			d->hdr_have = 0;
		}
		else
		{
			d->state = ST_TYPED_HDR;
			d->hdr_need = 5;
			d->hdr_have = 0;
		}
		return;
	}
	fill_message(d, msg, WIRE_MSG_TYPED, 0, 5, body, d->want);
	if (d->want < d->cur_len)
		d->state = ST_SKIP;
	else
		next_header_state(d);
}

WireStatus
wire_decoder_next(WireDecoder *d, const uint8_t *data, size_t len,
				  size_t *consumed, WireMessage *msg, WalsimError *err)
{
	size_t		pos = 0;

	*consumed = 0;
	if (d->failed)
	{
		walsim_error_set(err, "%s", d->last_error);
		return WIRE_FAILED;
	}

	while (pos < len)
	{
		switch (d->state)
		{
			case ST_CLOSED:
				*consumed = pos;
				return decoder_fail(d, err,
									"unexpected data at stream offset %llu after CancelRequest",
									(unsigned long long) d->offset);

			case ST_STARTUP_HDR:
			case ST_TYPED_HDR:
			case ST_ANSWER:
				{
					size_t		n = d->hdr_need - d->hdr_have;
					WireStatus	st;

					if (n > len - pos)
						n = len - pos;
					if (d->hdr_have == 0)
						d->cur_offset = d->offset;
					memcpy(d->hdr + d->hdr_have, data + pos, n);
					d->hdr_have += (uint32_t) n;
					pos += n;
					d->offset += n;

					/* an untyped length is judged as soon as it is known */
					if (d->state == ST_STARTUP_HDR && d->hdr_have >= 4 &&
						d->hdr_have - n < 4)
					{
						uint32_t	plen = wire_be32(d->hdr);

						if (plen < 8 || plen > WIRE_MAX_STARTUP_LENGTH)
						{
							*consumed = pos;
							return decoder_fail(d, err,
												"startup packet at stream offset %llu: length %u outside 8..%u",
												(unsigned long long) d->cur_offset,
												plen, WIRE_MAX_STARTUP_LENGTH);
						}
					}
					if (d->hdr_have < d->hdr_need)
						break;
					st = header_done(d, msg, err);
					if (st == WIRE_FAILED || st == WIRE_GOT_MESSAGE)
					{
						*consumed = pos;
						return st;
					}
					if (d->state == ST_BODY && d->want == 0)
					{
						body_done(d, msg, NULL);
						*consumed = pos;
						return WIRE_GOT_MESSAGE;
					}
					break;
				}

			case ST_BODY:
				{
					size_t		n = d->want - d->body_have;

					if (d->body_have == 0 && len - pos >= n)
					{
						/* whole reported part in this piece: no copy */
						const uint8_t *body = data + pos;

						pos += n;
						d->offset += n;
						d->body_have = (uint32_t) n;
						body_done(d, msg, body);
						*consumed = pos;
						return WIRE_GOT_MESSAGE;
					}
					if (d->buf_cap < d->want)
					{
						uint8_t    *nb = realloc(d->buf, d->want);

						if (nb == NULL)
							abort();
						d->buf = nb;
						d->buf_cap = d->want;
					}
					if (n > len - pos)
						n = len - pos;
					memcpy(d->buf + d->body_have, data + pos, n);
					d->body_have += (uint32_t) n;
					pos += n;
					d->offset += n;
					if (d->body_have == d->want)
					{
						body_done(d, msg, d->buf);
						*consumed = pos;
						return WIRE_GOT_MESSAGE;
					}
					break;
				}

			case ST_SKIP:
				{
					size_t		n = d->cur_len - d->body_have;

					if (n > len - pos)
						n = len - pos;
					d->body_have += (uint32_t) n;
					pos += n;
					d->offset += n;
					if (d->body_have == d->cur_len)
						next_header_state(d);
					break;
				}
		}
	}
	*consumed = pos;
	return WIRE_NEED_MORE;
}

/* ------------------------------------------------------------ body readers */

void
wire_reader_init(WireReader *r, const void *data, size_t len)
{
	r->p = data;
	r->len = len;
	r->pos = 0;
}

size_t
wire_reader_left(const WireReader *r)
{
	return r->len - r->pos;
}

bool
wire_get_u8(WireReader *r, uint8_t *v)
{
	if (wire_reader_left(r) < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

bool
wire_get_u16(WireReader *r, uint16_t *v)
{
	if (wire_reader_left(r) < 2)
		return false;
	*v = wire_be16(r->p + r->pos);
	r->pos += 2;
	return true;
}

bool
wire_get_u32(WireReader *r, uint32_t *v)
{
	if (wire_reader_left(r) < 4)
		return false;
	*v = wire_be32(r->p + r->pos);
	r->pos += 4;
	return true;
}

bool
wire_get_u64(WireReader *r, uint64_t *v)
{
	if (wire_reader_left(r) < 8)
		return false;
	*v = wire_be64(r->p + r->pos);
	r->pos += 8;
	return true;
}

bool
wire_get_bytes(WireReader *r, size_t n, const uint8_t **v)
{
	if (wire_reader_left(r) < n)
		return false;
	/* an empty body may have a NULL data pointer: no arithmetic on it */
	*v = r->len == 0 ? r->p : r->p + r->pos;
	r->pos += n;
	return true;
}

bool
wire_get_cstring(WireReader *r, const char **s)
{
	const uint8_t *start;
	const uint8_t *nul;

	/*
	 * Nothing left: no terminator.  Checked first because an empty body may
	 * come with a NULL pointer, which neither r->p + 0 nor memchr may see.
	 */
	if (wire_reader_left(r) == 0)
		return false;
	start = r->p + r->pos;
	nul = memchr(start, 0, wire_reader_left(r));
	if (nul == NULL)
		return false;
	*s = (const char *) start;
	r->pos += (size_t) (nul - start) + 1;
	return true;
}

bool
wire_parse_startup(uint32_t version, const uint8_t *body, size_t len,
				   WireStartup *out, WalsimError *err)
{
	WireReader	r;

	memset(out, 0, sizeof(*out));
	out->version = version;
	if (WIRE_PROTOCOL_MAJOR(version) != 3)
		return walsim_error_set(err,
								"StartupMessage: unsupported protocol version %u.%u (only 3.x)",
								WIRE_PROTOCOL_MAJOR(version),
								WIRE_PROTOCOL_MINOR(version));
	wire_reader_init(&r, body, len);
	for (;;)
	{
		size_t		at = r.pos;
		const char *key;
		const char *value;

		if (!wire_get_cstring(&r, &key))
			return walsim_error_set(err,
									"StartupMessage: parameter name at body offset %zu is not terminated",
									at);
		if (key[0] == '\0')
			break;
		at = r.pos;
		if (!wire_get_cstring(&r, &value))
			return walsim_error_set(err,
									"StartupMessage: value of parameter \"%.64s\" at body offset %zu is missing or not terminated",
									key, at);
		out->ntotal++;
		if (out->nparams < WIRE_MAX_STARTUP_PARAMS)
		{
			out->keys[out->nparams] = key;
			out->values[out->nparams] = value;
			out->nparams++;
		}
	}
	if (wire_reader_left(&r) != 0)
		return walsim_error_set(err,
								"StartupMessage: %zu bytes after the terminating NUL at body offset %zu",
								wire_reader_left(&r), r.pos - 1);
	out->body = body;
	out->len = len;
	return true;
}

bool
wire_startup_next(const WireStartup *s, size_t *pos, const char **key, const char **value)
{
	WireReader	r;

	if (s->body == NULL || *pos >= s->len)
		return false;
	wire_reader_init(&r, s->body, s->len);
	r.pos = *pos;
	/* the body was checked by wire_parse_startup: every pair is terminated */
	if (!wire_get_cstring(&r, key) || (*key)[0] == '\0' || !wire_get_cstring(&r, value))
		return false;
	*pos = r.pos;
	return true;
}

const char *
wire_startup_get(const WireStartup *s, const char *key)
{
	size_t		pos = 0;
	const char *k,
			   *v;

	for (int i = 0; i < s->nparams; i++)
	{
		if (strcmp(s->keys[i], key) == 0)
			return s->values[i];
	}
	if (s->ntotal == s->nparams)
		return NULL;
	/* beyond the index: walk the body (the indexed ones again, cheaply) */
	while (wire_startup_next(s, &pos, &k, &v))
		if (strcmp(k, key) == 0)
			return v;
	return NULL;
}

bool
wire_parse_query(const uint8_t *body, size_t len, const char **sql,
				 WalsimError *err)
{
	if (len == 0 || body[len - 1] != '\0')
		return walsim_error_set(err, "string message of %zu bytes is not NUL-terminated", len);
	if (memchr(body, 0, len) != body + len - 1)
		return walsim_error_set(err, "string message has an embedded NUL at offset %zu",
								(size_t) ((const uint8_t *) memchr(body, 0, len) - body));
	*sql = (const char *) body;
	return true;
}

bool
wire_parse_sasl_initial(const uint8_t *body, size_t len, const char **mechanism,
						const uint8_t **data, int32_t *data_len, WalsimError *err)
{
	WireReader	r;
	uint32_t	n;

	wire_reader_init(&r, body, len);
	if (!wire_get_cstring(&r, mechanism))
		return walsim_error_set(err, "SASLInitialResponse: mechanism name is not terminated");
	if (!wire_get_u32(&r, &n))
		return walsim_error_set(err, "SASLInitialResponse: data length missing at offset %zu", r.pos);
	*data_len = (int32_t) n;
	*data = NULL;
	if (*data_len == -1)
	{
		if (wire_reader_left(&r) != 0)
			return walsim_error_set(err, "SASLInitialResponse: %zu bytes after a -1 data length",
									wire_reader_left(&r));
		return true;
	}
	if (*data_len < 0 || (size_t) *data_len != wire_reader_left(&r))
		return walsim_error_set(err,
								"SASLInitialResponse: data length %d but %zu bytes follow",
								*data_len, wire_reader_left(&r));
	*data = body + r.pos;
	return true;
}

bool
wire_parse_cancel(const uint8_t *body, size_t len, uint32_t *pid, uint32_t *key,
				  WalsimError *err)
{
	if (len != 8)
		return walsim_error_set(err, "CancelRequest: body of %zu bytes, expected 8", len);
	*pid = wire_be32(body);
	*key = wire_be32(body + 4);
	return true;
}

bool
wire_parse_backend_key(const uint8_t *body, size_t len, uint32_t *pid,
					   const uint8_t **key, size_t *key_len, WalsimError *err)
{
	if (len < 8 || len > 4 + WIRE_MAX_CANCEL_KEY)
		return walsim_error_set(err, "backend key: body of %zu bytes, expected 8 to %d",
								len, 4 + WIRE_MAX_CANCEL_KEY);
	*pid = wire_be32(body);
	*key = body + 4;
	*key_len = len - 4;
	return true;
}

const char *
wire_error_field(const uint8_t *body, size_t len, char code, bool *malformed)
{
	WireReader	r;
	const char *found = NULL;

	if (malformed)
		*malformed = false;
	wire_reader_init(&r, body, len);
	for (;;)
	{
		uint8_t		fc;
		const char *value;

		if (!wire_get_u8(&r, &fc))
			break;				/* missing terminator */
		if (fc == 0)
		{
			if (wire_reader_left(&r) != 0)
				break;			/* bytes after the terminator */
			return found;
		}
		if (!wire_get_cstring(&r, &value))
			break;
		if ((char) fc == code && found == NULL)
			found = value;
	}
	if (malformed)
		*malformed = true;
	return NULL;
}

/* ------------------------------------------------------------ output buffer */

void
wire_buf_init(WireBuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->msg_start = SIZE_MAX;
}

void
wire_buf_free(WireBuf *b)
{
	free(b->data);
	wire_buf_init(b);
}

void
wire_buf_reset(WireBuf *b)
{
	b->len = 0;
	b->msg_start = SIZE_MAX;
}

void
wire_buf_reserve(WireBuf *b, size_t extra)
{
	size_t		need = b->len + extra;
	size_t		cap;
	uint8_t    *nd;

	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	nd = realloc(b->data, cap);
	if (nd == NULL)
		abort();
	b->data = nd;
	b->cap = cap;
}

void
wire_buf_consume(WireBuf *b, size_t n)
{
	if (n >= b->len)
	{
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void
wire_put_u8(WireBuf *b, uint8_t v)
{
	wire_buf_reserve(b, 1);
	b->data[b->len++] = v;
}

void
wire_put_u16(WireBuf *b, uint16_t v)
{
	wire_buf_reserve(b, 2);
	wire_store_be16(b->data + b->len, v);
	b->len += 2;
}

void
wire_put_u32(WireBuf *b, uint32_t v)
{
	wire_buf_reserve(b, 4);
	wire_store_be32(b->data + b->len, v);
	b->len += 4;
}

void
wire_put_u64(WireBuf *b, uint64_t v)
{
	wire_buf_reserve(b, 8);
	wire_store_be64(b->data + b->len, v);
	b->len += 8;
}

void
wire_put_bytes(WireBuf *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	wire_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void
wire_put_cstring(WireBuf *b, const char *s)
{
	wire_put_bytes(b, s, strlen(s) + 1);
}

void
wire_begin(WireBuf *b, char type)
{
	if (type != 0)
		wire_put_u8(b, (uint8_t) type);
	b->msg_start = b->len;
	wire_put_u32(b, 0);
}

void
wire_end(WireBuf *b)
{
	if (b->msg_start == SIZE_MAX)
		abort();				/* wire_end without wire_begin: a caller bug */
	wire_store_be32(b->data + b->msg_start, (uint32_t) (b->len - b->msg_start));
	b->msg_start = SIZE_MAX;
}

/* ------------------------------------------------------- backend messages */

static void
put_auth(WireBuf *b, uint32_t code, const void *data, size_t len)
{
	wire_begin(b, 'R');
	wire_put_u32(b, code);
	wire_put_bytes(b, data, len);
	wire_end(b);
}

void
wire_put_auth_ok(WireBuf *b)
{
	put_auth(b, WIRE_AUTH_OK, NULL, 0);
}

void
wire_put_auth_cleartext(WireBuf *b)
{
	put_auth(b, WIRE_AUTH_CLEARTEXT, NULL, 0);
}

void
wire_put_auth_md5(WireBuf *b, const uint8_t salt[4])
{
	put_auth(b, WIRE_AUTH_MD5, salt, 4);
}

void
wire_put_auth_sasl(WireBuf *b, const char *const *mechanisms, int n)
{
	wire_begin(b, 'R');
	wire_put_u32(b, WIRE_AUTH_SASL);
	for (int i = 0; i < n; i++)
		wire_put_cstring(b, mechanisms[i]);
	wire_put_u8(b, 0);
	wire_end(b);
}

void
wire_put_auth_sasl_continue(WireBuf *b, const void *data, size_t len)
{
	put_auth(b, WIRE_AUTH_SASL_CONTINUE, data, len);
}

void
wire_put_auth_sasl_final(WireBuf *b, const void *data, size_t len)
{
	put_auth(b, WIRE_AUTH_SASL_FINAL, data, len);
}

void
wire_put_parameter_status(WireBuf *b, const char *name, const char *value)
{
	wire_begin(b, 'S');
	wire_put_cstring(b, name);
	wire_put_cstring(b, value);
	wire_end(b);
}

void
wire_put_backend_key_data(WireBuf *b, uint32_t pid, uint32_t key)
{
	wire_begin(b, 'K');
	wire_put_u32(b, pid);
	wire_put_u32(b, key);
	wire_end(b);
}

void
wire_put_backend_key(WireBuf *b, uint32_t pid, const uint8_t *key, size_t key_len)
{
	wire_begin(b, 'K');
	wire_put_u32(b, pid);
	wire_put_bytes(b, key, key_len);
	wire_end(b);
}

void
wire_put_ready_for_query(WireBuf *b, char status)
{
	wire_begin(b, 'Z');
	wire_put_u8(b, (uint8_t) status);
	wire_end(b);
}

void
wire_put_row_description(WireBuf *b, const WireField *fields, int n)
{
	wire_begin(b, 'T');
	wire_put_u16(b, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		wire_put_cstring(b, fields[i].name);
		wire_put_u32(b, fields[i].table_oid);
		wire_put_u16(b, fields[i].attnum);
		wire_put_u32(b, fields[i].type_oid);
		wire_put_u16(b, (uint16_t) fields[i].typlen);
		wire_put_u32(b, (uint32_t) fields[i].typmod);
		wire_put_u16(b, (uint16_t) fields[i].format);
	}
	wire_end(b);
}

void
wire_put_data_row(WireBuf *b, const char *const *values, const int32_t *lengths,
				  int n)
{
	wire_begin(b, 'D');
	wire_put_u16(b, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		if (values[i] == NULL)
		{
			wire_put_u32(b, (uint32_t) -1);
			continue;
		}
		{
			size_t		len = lengths ? (size_t) lengths[i] : strlen(values[i]);

			wire_put_u32(b, (uint32_t) len);
			wire_put_bytes(b, values[i], len);
		}
	}
	wire_end(b);
}

void
wire_put_command_complete(WireBuf *b, const char *tag)
{
	wire_begin(b, 'C');
	wire_put_cstring(b, tag);
	wire_end(b);
}

static void
put_error_fields(WireBuf *b, char type, const char *severity,
				 const char *sqlstate, const char *message, const char *detail)
{
	wire_begin(b, type);
	wire_put_u8(b, 'S');
	wire_put_cstring(b, severity);
	wire_put_u8(b, 'V');
	wire_put_cstring(b, severity);
	wire_put_u8(b, 'C');
	wire_put_cstring(b, sqlstate);
	wire_put_u8(b, 'M');
	wire_put_cstring(b, message);
	if (detail)
	{
		wire_put_u8(b, 'D');
		wire_put_cstring(b, detail);
	}
	wire_put_u8(b, 0);
	wire_end(b);
}

void
wire_put_error(WireBuf *b, const char *severity, const char *sqlstate,
			   const char *message, const char *detail)
{
	put_error_fields(b, 'E', severity, sqlstate, message, detail);
}

void
wire_put_notice(WireBuf *b, const char *severity, const char *sqlstate,
				const char *message, const char *detail)
{
	put_error_fields(b, 'N', severity, sqlstate, message, detail);
}

void
wire_put_copy_both_response(WireBuf *b, int8_t format,
							const int16_t *col_formats, int n)
{
	wire_begin(b, 'W');
	wire_put_u8(b, (uint8_t) format);
	wire_put_u16(b, (uint16_t) n);
	for (int i = 0; i < n; i++)
		wire_put_u16(b, (uint16_t) col_formats[i]);
	wire_end(b);
}

void
wire_put_copy_data(WireBuf *b, const void *data, size_t len)
{
	wire_begin(b, 'd');
	wire_put_bytes(b, data, len);
	wire_end(b);
}

void
wire_put_copy_done(WireBuf *b)
{
	wire_begin(b, 'c');
	wire_end(b);
}

void
wire_put_negotiate_protocol_version(WireBuf *b, uint32_t version,
									const char *const *unknown_options, int n)
{
	wire_begin(b, 'v');
	wire_put_u32(b, version);
	wire_put_u32(b, (uint32_t) n);
	for (int i = 0; i < n; i++)
		wire_put_cstring(b, unknown_options[i]);
	wire_end(b);
}

/* ------------------------------------------------------ frontend messages */

void
wire_put_startup(WireBuf *b, uint32_t version, const char *const *keys,
				 const char *const *values, int n)
{
	wire_begin(b, 0);
	wire_put_u32(b, version);
	for (int i = 0; i < n; i++)
	{
		wire_put_cstring(b, keys[i]);
		wire_put_cstring(b, values[i]);
	}
	wire_put_u8(b, 0);
	wire_end(b);
}

static void
put_request(WireBuf *b, uint32_t code)
{
	wire_begin(b, 0);
	wire_put_u32(b, code);
	wire_end(b);
}

void
wire_put_ssl_request(WireBuf *b)
{
	put_request(b, WIRE_SSL_REQUEST_CODE);
}

void
wire_put_gssenc_request(WireBuf *b)
{
	put_request(b, WIRE_GSSENC_REQUEST_CODE);
}

void
wire_put_cancel_request(WireBuf *b, uint32_t pid, uint32_t key)
{
	wire_begin(b, 0);
	wire_put_u32(b, WIRE_CANCEL_REQUEST_CODE);
	wire_put_u32(b, pid);
	wire_put_u32(b, key);
	wire_end(b);
}

void
wire_put_query(WireBuf *b, const char *sql)
{
	wire_begin(b, 'Q');
	wire_put_cstring(b, sql);
	wire_end(b);
}

void
wire_put_password(WireBuf *b, const char *password)
{
	wire_begin(b, 'p');
	wire_put_cstring(b, password);
	wire_end(b);
}

void
wire_put_terminate(WireBuf *b)
{
	wire_begin(b, 'X');
	wire_end(b);
}
