/*
 * pgtime.c — PostgreSQL timestamps <-> Unix time (walsim/pgtime.h).
 */
#include "walsim/pgtime.h"

#define PG_EPOCH_UNIX_USEC (PG_EPOCH_UNIX_SECONDS * PG_USECS_PER_SEC)

PgTimestamp
pg_timestamp_from_unix(int64_t unix_seconds, int32_t usec)
{
	return (unix_seconds - PG_EPOCH_UNIX_SECONDS) * PG_USECS_PER_SEC + usec;
}

PgTimestamp
pg_timestamp_from_unix_usec(int64_t unix_usec)
{
	return unix_usec - PG_EPOCH_UNIX_USEC;
}

int64_t
pg_timestamp_to_unix_usec(PgTimestamp ts)
{
	return ts + PG_EPOCH_UNIX_USEC;
}

struct timespec
pg_timestamp_to_timespec(PgTimestamp ts)
{
	int64_t		usec = pg_timestamp_to_unix_usec(ts);
	int64_t		sec = usec / PG_USECS_PER_SEC;
	int64_t		rem = usec % PG_USECS_PER_SEC;
	struct timespec result;

	/* C division truncates towards zero; keep tv_nsec non-negative */
	if (rem < 0)
	{
		rem += PG_USECS_PER_SEC;
		sec -= 1;
	}
	result.tv_sec = (time_t) sec;
	result.tv_nsec = (long) (rem * 1000);
	return result;
}

PgTimestamp
pg_timestamp_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return pg_timestamp_from_unix((int64_t) now.tv_sec,
								  (int32_t) (now.tv_nsec / 1000));
}

int64_t
pg_timestamp_diff_ms(PgTimestamp a, PgTimestamp b)
{
	return (b - a) / 1000;
}
