/*
 * test_replmsg.c — replication CopyData payloads: exact sizes, round trips,
 * big-endian layout, rejection of wrong lengths and unknown subtypes.
 */
#include <check.h>
#include <string.h>

#include "walsim/replmsg.h"
#include "unit_support.h"

START_TEST(test_xlogdata_round_trip)
{
	uint8_t		payload[REPL_XLOGDATA_HEADER + 5];
	ReplMessage m;
	WalsimError err;

	repl_encode_xlogdata_header(payload, UINT64_C(0x3000000), UINT64_C(0x3025A70),
								INT64_C(-5));
	memcpy(payload + REPL_XLOGDATA_HEADER, "abcde", 5);
	/* layout: 'w', then big-endian dataStart */
	ck_assert_int_eq(payload[0], 'w');
	ck_assert_int_eq(payload[5], 0x03);
	ck_assert(repl_decode(payload, sizeof(payload), REPL_FROM_SERVER, &m, &err));
	ck_assert_int_eq(m.type, 'w');
	ck_assert_uint_eq(m.u.xlog.data_start, 0x3000000);
	ck_assert_uint_eq(m.u.xlog.wal_end, 0x3025A70);
	ck_assert_int_eq(m.u.xlog.send_time, -5);
	ck_assert_uint_eq(m.u.xlog.len, 5);
	ck_assert_uint_eq(m.u.xlog.avail, 5);
	ck_assert_mem_eq(m.u.xlog.data, "abcde", 5);

	/* a header-only XLogData is legal (0 WAL bytes) */
	ck_assert(repl_decode(payload, REPL_XLOGDATA_HEADER, REPL_FROM_SERVER, &m, &err));
	ck_assert_uint_eq(m.u.xlog.len, 0);

	/* partial: header known, WAL bytes still to come */
	ck_assert(repl_decode_partial(payload, REPL_XLOGDATA_HEADER + 2, 131097,
								  REPL_FROM_SERVER, &m, &err));
	ck_assert_uint_eq(m.u.xlog.len, 131072);
	ck_assert_uint_eq(m.u.xlog.avail, 2);
	ck_assert(!repl_decode_partial(payload, 10, 131097, REPL_FROM_SERVER, &m, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "only 10 of its 25 header bytes"));
	ck_assert(!repl_decode_partial(payload, 30, 20, REPL_FROM_SERVER, &m, &err));
}
END_TEST

START_TEST(test_keepalive_round_trip)
{
	ReplKeepalive k = {.wal_end = UINT64_C(0x4000088), .send_time = 123456789, .reply_requested = true};
	uint8_t		p[REPL_KEEPALIVE_LEN];
	ReplMessage m;
	WalsimError err;

	repl_encode_keepalive(p, &k);
	ck_assert_int_eq(p[17], 1);
	ck_assert(repl_decode(p, sizeof(p), REPL_FROM_SERVER, &m, &err));
	ck_assert_int_eq(m.type, 'k');
	ck_assert_uint_eq(m.u.keepalive.wal_end, k.wal_end);
	ck_assert_int_eq(m.u.keepalive.send_time, k.send_time);
	ck_assert(m.u.keepalive.reply_requested);
	/* off by one either way */
	ck_assert(!repl_decode(p, sizeof(p) - 1, REPL_FROM_SERVER, &m, &err));
	ck_assert_str_eq(err.message, "keepalive ('k') of 17 bytes, expected 18");
	{
		uint8_t		q[REPL_KEEPALIVE_LEN + 1] = {0};

		memcpy(q, p, sizeof(p));
		ck_assert(!repl_decode(q, sizeof(q), REPL_FROM_SERVER, &m, &err));
		ck_assert_str_eq(err.message, "keepalive ('k') of 19 bytes, expected 18");
	}
	/* a keepalive coming from the client is not legal */
	ck_assert(!repl_decode(p, sizeof(p), REPL_FROM_CLIENT, &m, &err));
	ck_assert_str_eq(err.message, "unknown replication message subtype 'k' from the client");
	ck_assert(repl_decode(p, sizeof(p), REPL_FROM_ANY, &m, &err));
}
END_TEST

START_TEST(test_status_round_trip)
{
	ReplStatus	s = {.write = UINT64_C(0x100000000), .flush = 2, .apply = UINT64_C(0xFFFFFFFFFFFFFFFF),
	.send_time = -1, .reply_requested = false};
	uint8_t		p[REPL_STATUS_LEN];
	ReplMessage m;
	WalsimError err;

	repl_encode_status(p, &s);
	ck_assert_int_eq(p[0], 'r');
	ck_assert_int_eq(p[4], 0x01);		/* 0x0000000100000000 big-endian */
	ck_assert(repl_decode(p, sizeof(p), REPL_FROM_CLIENT, &m, &err));
	ck_assert_uint_eq(m.u.status.write, s.write);
	ck_assert_uint_eq(m.u.status.flush, 2);
	ck_assert_uint_eq(m.u.status.apply, s.apply);
	ck_assert_int_eq(m.u.status.send_time, -1);
	ck_assert(!m.u.status.reply_requested);
	for (size_t len = 1; len < sizeof(p); len++)
		ck_assert(!repl_decode(p, len, REPL_FROM_CLIENT, &m, &err));
	ck_assert(!repl_decode(p, sizeof(p), REPL_FROM_SERVER, &m, &err));
}
END_TEST

START_TEST(test_feedback_round_trip)
{
	ReplFeedback f = {.send_time = 42, .xmin = 735, .xmin_epoch = 1, .catalog_xmin = 0, .catalog_xmin_epoch = 7};
	uint8_t		p[REPL_FEEDBACK_LEN];
	ReplMessage m;
	WalsimError err;

	repl_encode_feedback(p, &f);
	ck_assert(repl_decode(p, sizeof(p), REPL_FROM_CLIENT, &m, &err));
	ck_assert_int_eq(m.type, 'h');
	ck_assert_int_eq(m.u.feedback.send_time, 42);
	ck_assert_uint_eq(m.u.feedback.xmin, 735);
	ck_assert_uint_eq(m.u.feedback.xmin_epoch, 1);
	ck_assert_uint_eq(m.u.feedback.catalog_xmin, 0);
	ck_assert_uint_eq(m.u.feedback.catalog_xmin_epoch, 7);
	ck_assert(!repl_decode(p, 24, REPL_FROM_CLIENT, &m, &err));
	ck_assert_str_eq(err.message, "hot standby feedback ('h') of 24 bytes, expected 25");
}
END_TEST

START_TEST(test_rejects)
{
	uint8_t		p[40] = {0};
	ReplMessage m;
	WalsimError err;

	ck_assert(!repl_decode(p, 0, REPL_FROM_ANY, &m, &err));
	ck_assert_str_eq(err.message, "replication CopyData payload is empty");
	p[0] = 'x';
	ck_assert(!repl_decode(p, 18, REPL_FROM_SERVER, &m, &err));
	ck_assert_str_eq(err.message, "unknown replication message subtype 'x' from the server");
	p[0] = 0x01;
	ck_assert(!repl_decode(p, 18, REPL_FROM_ANY, &m, &err));
	ck_assert_str_eq(err.message, "unknown replication message subtype 0x01 from the peer");
	p[0] = 'w';
	ck_assert(!repl_decode(p, 24, REPL_FROM_SERVER, &m, &err));
	ck_assert_str_eq(err.message, "XLogData ('w') of 24 bytes, expected at least 25");
	p[0] = 'r';
	ck_assert(!repl_decode(p, 35, REPL_FROM_CLIENT, &m, &err));
	ck_assert_str_eq(err.message, "status update ('r') of 35 bytes, expected 34");
	ck_assert_str_eq(repl_message_name('q'), "unknown");
}
END_TEST

START_TEST(test_put_copydata)
{
	WireBuf		b;
	ReplKeepalive k = {.wal_end = 9, .send_time = 8, .reply_requested = false};
	ReplStatus	s = {.write = 1, .flush = 1, .apply = 1, .send_time = 1};
	ReplFeedback f = {0};
	WireDecoder d;
	WireMessage msg;
	size_t		used,
				pos = 0;
	ReplMessage m;
	const char	expect[] = "wkrh";
	int			i = 0;

	wire_buf_init(&b);
	repl_put_xlogdata(&b, 0x10, 0x20, 0, "WALWAL", 6);
	repl_put_keepalive(&b, &k);
	repl_put_status(&b, &s);
	repl_put_feedback(&b, &f);
	ck_assert_uint_eq(b.len, 5 + 31 + 5 + 18 + 5 + 34 + 5 + 25);
	wire_decoder_init(&d, WIRE_BACKEND, 0, 0);
	while (pos < b.len)
	{
		WireStatus	st = wire_decoder_next(&d, b.data + pos, b.len - pos, &used, &msg, NULL);

		pos += used;
		if (st != WIRE_GOT_MESSAGE)
			break;
		ck_assert_int_eq(msg.type, 'd');
		ck_assert(repl_decode(msg.body, msg.body_len, REPL_FROM_ANY, &m, NULL));
		ck_assert_int_eq(m.type, expect[i]);
		i++;
	}
	ck_assert_int_eq(i, 4);
	wire_decoder_free(&d);
	wire_buf_free(&b);
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("replmsg");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_xlogdata_round_trip);
	tcase_add_test(tc, test_keepalive_round_trip);
	tcase_add_test(tc, test_status_round_trip);
	tcase_add_test(tc, test_feedback_round_trip);
	tcase_add_test(tc, test_rejects);
	tcase_add_test(tc, test_put_copydata);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
