/*
 * wire.h — PostgreSQL frontend/backend protocol 3.0 and 3.2 framing.
 *
 * Protocol 3.2 (PostgreSQL 18; 3.1 was never used) changes only the secret
 * key: BackendKeyData and CancelRequest carry a key of 4 to 256 bytes (18
 * sends 32) instead of exactly 4 (src/include/libpq/pqcomm.h,
 * MAX_CANCEL_KEY_LENGTH; doc/src/sgml/protocol.sgml).
 *
 * Two halves:
 *
 * 1. An incremental decoder (WireDecoder) for either direction of a
 *    connection.  Input may arrive in pieces of any size; the sequence of
 *    messages reported is a function of the byte stream only, so feeding one
 *    byte at a time gives exactly what feeding everything at once gives.
 *
 *    - The frontend (client -> server) stream starts untyped: a 4-byte length
 *      and a 4-byte code (StartupMessage with the protocol version, or
 *      SSLRequest 80877103, GSSENCRequest 80877104, CancelRequest 80877102).
 *      After an SSL/GSS request the client sends another startup packet (the
 *      server answered 'N'); after a CancelRequest nothing may follow; after a
 *      StartupMessage the stream is typed (1 type byte, 4-byte length).
 *    - The backend (server -> client) stream is typed from the start, except
 *      for the single-byte answer to SSLRequest/GSSENCRequest; the caller,
 *      who knows it asked, announces it with wire_decoder_expect_answer().
 *
 *    Zero-copy: each reported message carries its stream offset and total
 *    size, so a proxy can forward the original bytes without copying them.
 *    The body is reported whole when it is at most the decoder's capture
 *    limit (pointing into the caller's input when the message lies entirely
 *    within one piece, else into the decoder's own buffer); a longer body is
 *    reported as soon as its first `capture` bytes are known (body_complete
 *    false) and the rest is skipped without copying.
 *
 *    A length field below the minimum or above the decoder's hard limit is
 *    an error naming the message type, the stream offset and the limit; the
 *    decoder then stays failed (the stream cannot be re-synchronised).
 *
 * 2. A growable output buffer (WireBuf) with encoders for the messages a
 *    server, a proxy or a test client needs, and parsers for the message
 *    bodies a server needs to understand (startup packet, Query, password
 *    and SASL messages, ErrorResponse fields).
 *
 * All integers on the wire are big-endian.  Allocation failure in WireBuf
 * aborts the process (as pg_malloc does); everything else reports errors
 * through WalsimError.
 */
#ifndef WALSIM_WIRE_H
#define WALSIM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

/* Special request codes sent in place of a protocol version. */
#define WIRE_CANCEL_REQUEST_CODE	80877102u
#define WIRE_SSL_REQUEST_CODE		80877103u
#define WIRE_GSSENC_REQUEST_CODE	80877104u
#define WIRE_PROTOCOL_3_0			196608u /* 3 << 16 | 0 */
#define WIRE_PROTOCOL_3_2			196610u /* 3 << 16 | 2: PostgreSQL 18 */
#define WIRE_MAX_CANCEL_KEY			256 /* bytes of a 3.2 secret key */
#define WIRE_PROTOCOL_MAJOR(v)		((v) >> 16)
#define WIRE_PROTOCOL_MINOR(v)		((v) & 0xFFFF)

/* PostgreSQL's own limits (MAX_STARTUP_PACKET_LENGTH, PQ_LARGE_MESSAGE_LIMIT). */
#define WIRE_MAX_STARTUP_LENGTH		10000u
#define WIRE_DEFAULT_MAX_LENGTH		(0x3FFFFFFFu)	/* 1 GB - 1 */
#define WIRE_DEFAULT_CAPTURE		(64u * 1024u)

/* Authentication request codes (the Int32 after 'R'). */
#define WIRE_AUTH_OK				0
#define WIRE_AUTH_CLEARTEXT			3
#define WIRE_AUTH_MD5				5
#define WIRE_AUTH_SASL				10
#define WIRE_AUTH_SASL_CONTINUE		11
#define WIRE_AUTH_SASL_FINAL		12

typedef enum WireDirection
{
	WIRE_FRONTEND,				/* client -> server: starts with a startup packet */
	WIRE_BACKEND				/* server -> client: typed messages */
} WireDirection;

typedef enum WireKind
{
	WIRE_MSG_TYPED,				/* 1 type byte + Int32 length + body */
	WIRE_MSG_STARTUP,			/* untyped StartupMessage; version in .code */
	WIRE_MSG_SSL_REQUEST,
	WIRE_MSG_GSSENC_REQUEST,
	WIRE_MSG_CANCEL_REQUEST,	/* body: Int32 pid, Int32 key */
	WIRE_MSG_ANSWER				/* one byte ('N', 'S' or 'G') answering a request */
} WireKind;

typedef struct WireMessage
{
	WireKind	kind;
	char		type;			/* type byte of TYPED and ANSWER messages, else 0 */
	uint32_t	code;			/* request code / protocol version of untyped ones */
	uint64_t	offset;			/* stream offset of the message's first byte */
	uint64_t	size;			/* total bytes on the wire, header included */
	uint32_t	header_len;		/* 5 typed, 8 untyped (length + code), 1 answer */
	uint32_t	body_len;		/* full body length (size - header_len) */
	const uint8_t *body;		/* first body_avail bytes of the body */
	uint32_t	body_avail;		/* == body_len when body_complete */
	bool		body_complete;
	uint64_t	index;			/* 0-based message number in this stream */
} WireMessage;

typedef enum WireStatus
{
	WIRE_NEED_MORE,				/* all input consumed, no complete message */
	WIRE_GOT_MESSAGE,			/* *msg filled; call again with the rest */
	WIRE_FAILED					/* malformed stream; err says why and where */
} WireStatus;

typedef struct WireDecoder
{
	WireDirection dir;
	uint32_t	max_length;		/* hard limit on any length field */
	uint32_t	capture;		/* bodies up to this size are reported whole */
	int			state;			/* private */
	bool		failed;
	bool		expect_answer;
	uint64_t	offset;			/* bytes consumed so far */
	uint64_t	nmessages;
	uint8_t		hdr[8];
	uint32_t	hdr_have;
	uint32_t	hdr_need;
	char		cur_type;
	int			cur_kind;		/* WireKind of the message being collected */
	uint32_t	cur_len;		/* body length of the current message */
	uint64_t	cur_offset;
	uint32_t	body_have;		/* body bytes consumed so far */
	uint32_t	want;			/* body bytes to report (min(body, capture)) */
	uint8_t    *buf;			/* captured body bytes spanning pieces */
	uint32_t	buf_cap;
	char		last_error[WALSIM_ERROR_MAX];
} WireDecoder;

/*
 * Start decoding one direction.  max_length 0 means WIRE_DEFAULT_MAX_LENGTH;
 * capture 0 means WIRE_DEFAULT_CAPTURE.  Startup packets are always limited
 * to WIRE_MAX_STARTUP_LENGTH and always captured whole.
 */
void		wire_decoder_init(WireDecoder *d, WireDirection dir,
							  uint32_t max_length, uint32_t capture);
void		wire_decoder_free(WireDecoder *d);

/* Backend stream: the next byte is the one-byte answer to SSL/GSSENC. */
void		wire_decoder_expect_answer(WireDecoder *d);

/*
 * Consume input until one message is known or the input is used up.
 * *consumed is set to the number of bytes of data used (possibly fewer than
 * len when a message is returned; call again with data + *consumed).
 * A returned message's body pointer is valid until the next call.
 * A long body's remaining bytes are consumed by later calls without
 * further reports; wire_decoder_in_body() tells whether that is going on.
 */
WireStatus	wire_decoder_next(WireDecoder *d, const uint8_t *data, size_t len,
							  size_t *consumed, WireMessage *msg,
							  WalsimError *err);

/* True while inside a message (its header or body not yet fully consumed). */
bool		wire_decoder_in_message(const WireDecoder *d);

/* Bytes of the current message still to come (0 between messages). */
uint64_t	wire_decoder_remaining(const WireDecoder *d);

/*
 * Account for n bytes of the current long body that the caller moved
 * without reading them (e.g. splice(2) from socket to socket).  Only legal
 * while the unreported rest of a body is being skipped and n is at most
 * wire_decoder_remaining(); returns false (changing nothing) otherwise.
 */
bool		wire_decoder_skip(WireDecoder *d, uint64_t n);

/* Human name of a message type in a direction ("CopyData", "Query"...). */
const char *wire_message_name(WireDirection dir, WireKind kind, char type);

/* ------------------------------------------------------------ reading bodies */

/* A bounds-checked cursor over a message body. */
typedef struct WireReader
{
	const uint8_t *p;
	size_t		len;
	size_t		pos;
} WireReader;

void		wire_reader_init(WireReader *r, const void *data, size_t len);
bool		wire_get_u8(WireReader *r, uint8_t *v);
bool		wire_get_u16(WireReader *r, uint16_t *v);
bool		wire_get_u32(WireReader *r, uint32_t *v);
bool		wire_get_u64(WireReader *r, uint64_t *v);
bool		wire_get_bytes(WireReader *r, size_t n, const uint8_t **v);
/* A NUL-terminated string inside the body; false if no NUL before the end. */
bool		wire_get_cstring(WireReader *r, const char **s);
size_t		wire_reader_left(const WireReader *r);

uint16_t	wire_be16(const uint8_t *p);
uint32_t	wire_be32(const uint8_t *p);
uint64_t	wire_be64(const uint8_t *p);
void		wire_store_be16(uint8_t *p, uint16_t v);
void		wire_store_be32(uint8_t *p, uint32_t v);
void		wire_store_be64(uint8_t *p, uint64_t v);

/*
 * The first WIRE_MAX_STARTUP_PARAMS parameters are indexed in keys/values;
 * a startup packet may hold more (PostgreSQL bounds only the packet's
 * length): all of them are checked, counted in ntotal, and reached through
 * wire_startup_get and wire_startup_next.
 */
#define WIRE_MAX_STARTUP_PARAMS 64

/* A parsed StartupMessage; the strings point into the parsed body. */
typedef struct WireStartup
{
	uint32_t	version;
	int			nparams;		/* indexed in keys/values */
	int			ntotal;			/* in the packet (>= nparams) */
	const char *keys[WIRE_MAX_STARTUP_PARAMS];
	const char *values[WIRE_MAX_STARTUP_PARAMS];
	const uint8_t *body;		/* the parsed body, for the parameters beyond the index */
	size_t		len;
} WireStartup;

/*
 * Parse a StartupMessage body (after length and version) as reported by the
 * decoder: version is the message's .code.  Rejects a major version other
 * than 3, a missing terminator, a key without a value and bytes after the
 * terminator, naming the byte offset.  Any number of parameters.
 */
bool		wire_parse_startup(uint32_t version, const uint8_t *body, size_t len,
							   WireStartup *out, WalsimError *err);
/* Value of a startup parameter (its first occurrence), or NULL. */
const char *wire_startup_get(const WireStartup *s, const char *key);

/*
 * Every parameter in order: start with *pos = 0; true with key and value
 * set while there is one.
 */
bool		wire_startup_next(const WireStartup *s, size_t *pos, const char **key,
							  const char **value);

/* Query ('Q') / PasswordMessage ('p' cleartext or MD5): one C string filling the body. */
bool		wire_parse_query(const uint8_t *body, size_t len, const char **sql,
							 WalsimError *err);

/* SASLInitialResponse ('p'): mechanism name, Int32 length (-1 = none), data. */
bool		wire_parse_sasl_initial(const uint8_t *body, size_t len,
									const char **mechanism,
									const uint8_t **data, int32_t *data_len,
									WalsimError *err);

/* CancelRequest body (after length and code): backend pid and a 4-byte secret key (3.0). */
bool		wire_parse_cancel(const uint8_t *body, size_t len,
							  uint32_t *pid, uint32_t *key, WalsimError *err);

/*
 * The body of a CancelRequest (after length and code) or of BackendKeyData:
 * pid and a secret key of 4 to WIRE_MAX_CANCEL_KEY bytes (*key points into
 * body).
 */
bool		wire_parse_backend_key(const uint8_t *body, size_t len, uint32_t *pid,
								   const uint8_t **key, size_t *key_len, WalsimError *err);

/*
 * ErrorResponse / NoticeResponse: find field `code` ('S', 'V', 'C', 'M',
 * 'D'...).  Returns NULL if absent; on a malformed body returns NULL and
 * sets *malformed (if given).
 */
const char *wire_error_field(const uint8_t *body, size_t len, char code,
							 bool *malformed);

/* ------------------------------------------------------------ output buffer */

typedef struct WireBuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	size_t		msg_start;		/* offset of the open message, SIZE_MAX if none */
} WireBuf;

void		wire_buf_init(WireBuf *b);
void		wire_buf_free(WireBuf *b);
void		wire_buf_reset(WireBuf *b);
void		wire_buf_reserve(WireBuf *b, size_t extra);
/* Drop the first n bytes (after they were written out). */
void		wire_buf_consume(WireBuf *b, size_t n);

void		wire_put_u8(WireBuf *b, uint8_t v);
void		wire_put_u16(WireBuf *b, uint16_t v);
void		wire_put_u32(WireBuf *b, uint32_t v);
void		wire_put_u64(WireBuf *b, uint64_t v);
void		wire_put_bytes(WireBuf *b, const void *data, size_t len);
void		wire_put_cstring(WireBuf *b, const char *s);	/* with its NUL */

/*
 * Build a message of any type: begin writes the type byte (0 for untyped)
 * and a length placeholder, end patches the length.  Messages do not nest.
 */
void		wire_begin(WireBuf *b, char type);
void		wire_end(WireBuf *b);

/* --- backend messages */
void		wire_put_auth_ok(WireBuf *b);
void		wire_put_auth_cleartext(WireBuf *b);
void		wire_put_auth_md5(WireBuf *b, const uint8_t salt[4]);
/* SASL: list of mechanism names (e.g. "SCRAM-SHA-256"). */
void		wire_put_auth_sasl(WireBuf *b, const char *const *mechanisms, int n);
void		wire_put_auth_sasl_continue(WireBuf *b, const void *data, size_t len);
void		wire_put_auth_sasl_final(WireBuf *b, const void *data, size_t len);
void		wire_put_parameter_status(WireBuf *b, const char *name, const char *value);
void		wire_put_backend_key_data(WireBuf *b, uint32_t pid, uint32_t key);
/* BackendKeyData with a key of any length (protocol 3.2: 4 to 256 bytes). */
void		wire_put_backend_key(WireBuf *b, uint32_t pid, const uint8_t *key, size_t key_len);
/* status: 'I' idle, 'T' in transaction, 'E' failed transaction */
void		wire_put_ready_for_query(WireBuf *b, char status);

typedef struct WireField
{
	const char *name;
	uint32_t	table_oid;
	uint16_t	attnum;
	uint32_t	type_oid;		/* 25 text, 23 int4, 20 int8 ... */
	int16_t		typlen;			/* -1 varlena */
	int32_t		typmod;			/* -1 none */
	int16_t		format;			/* 0 text */
} WireField;

void		wire_put_row_description(WireBuf *b, const WireField *fields, int n);
/*
 * DataRow of n columns: values[i] == NULL is SQL NULL; lengths may be NULL
 * (then each value is a C string) or give each value's byte length.
 */
void		wire_put_data_row(WireBuf *b, const char *const *values,
							  const int32_t *lengths, int n);
void		wire_put_command_complete(WireBuf *b, const char *tag);
/*
 * ErrorResponse ('E') or NoticeResponse ('N'): severity (S and V fields),
 * SQLSTATE (C), message (M) and an optional detail (D, NULL for none).
 */
void		wire_put_error(WireBuf *b, const char *severity, const char *sqlstate,
						   const char *message, const char *detail);
void		wire_put_notice(WireBuf *b, const char *severity, const char *sqlstate,
							const char *message, const char *detail);
/* CopyBothResponse: overall format and per-column formats (n may be 0). */
void		wire_put_copy_both_response(WireBuf *b, int8_t format,
										const int16_t *col_formats, int n);
void		wire_put_copy_data(WireBuf *b, const void *data, size_t len);
void		wire_put_copy_done(WireBuf *b);
/*
 * NegotiateProtocolVersion: the protocol version the server will speak (the
 * whole Int32, 3 << 16 | minor: PostgreSQL sends FrontendProtocol, e.g.
 * 196610 for 3.2, observed from 15, 17 and 18), then the unknown _pq_ options.
 */
void		wire_put_negotiate_protocol_version(WireBuf *b, uint32_t version,
												const char *const *unknown_options,
												int n);

/* --- frontend messages (test clients, proxies) */
void		wire_put_startup(WireBuf *b, uint32_t version,
							 const char *const *keys, const char *const *values,
							 int n);
void		wire_put_ssl_request(WireBuf *b);
void		wire_put_gssenc_request(WireBuf *b);
void		wire_put_cancel_request(WireBuf *b, uint32_t pid, uint32_t key);
void		wire_put_query(WireBuf *b, const char *sql);
void		wire_put_password(WireBuf *b, const char *password);
void		wire_put_terminate(WireBuf *b);

#endif							/* WALSIM_WIRE_H */
