/*
 * pgtime.h — PostgreSQL timestamps (TimestampTz): signed 64-bit microseconds
 * since 2000-01-01 00:00:00 UTC, the clock of every replication message
 * ('w', 'k', 'r', 'h' send times).
 */
#ifndef WALSIM_PGTIME_H
#define WALSIM_PGTIME_H

#include <stdint.h>
#include <time.h>

/* Seconds from the Unix epoch (1970-01-01) to the PostgreSQL epoch (2000-01-01). */
#define PG_EPOCH_UNIX_SECONDS INT64_C(946684800)
#define PG_USECS_PER_SEC      INT64_C(1000000)

typedef int64_t PgTimestamp;

/* Unix seconds + microseconds -> PostgreSQL timestamp. */
PgTimestamp pg_timestamp_from_unix(int64_t unix_seconds, int32_t usec);

/* Unix time in microseconds -> PostgreSQL timestamp. */
PgTimestamp pg_timestamp_from_unix_usec(int64_t unix_usec);

/* PostgreSQL timestamp -> Unix time in microseconds. */
int64_t		pg_timestamp_to_unix_usec(PgTimestamp ts);

/*
 * PostgreSQL timestamp -> struct timespec (Unix time); rounds towards minus
 * infinity so tv_nsec is always in [0, 1e9).
 */
struct timespec pg_timestamp_to_timespec(PgTimestamp ts);

/* Current wall-clock time (CLOCK_REALTIME) as PostgreSQL does in GetCurrentTimestamp(). */
PgTimestamp pg_timestamp_now(void);

/* Milliseconds from a to b (b - a), for feedback intervals; may be negative. */
int64_t		pg_timestamp_diff_ms(PgTimestamp a, PgTimestamp b);

#endif							/* WALSIM_PGTIME_H */
