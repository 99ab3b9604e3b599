# Test helper programs built from tests/helpers (run by the pytest suites).
TEST_HELPERS += wal-end
wal-end_SRCS := tests/helpers/wal_end.c
