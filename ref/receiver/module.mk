# walsim-receiver: the verifying pg_receivewal-compatible receiver (libpq).
PROGRAMS += walsim-receiver
walsim-receiver_SRCS := ref/receiver/main.c ref/receiver/stream.c ref/receiver/conn.c \
    ref/receiver/options.c ref/receiver/walfiles.c ref/receiver/verify.c \
    ref/receiver/basebackup.c ref/receiver/tarx.c
walsim-receiver_LIBS := $(PQ_LIBS)

# unit tests of the receiver's pure parts (tests/unit/test_receiver_*.c)
test_receiver_options_SRCS := ref/receiver/options.c
test_receiver_walfiles_SRCS := ref/receiver/walfiles.c
test_receiver_verify_SRCS := ref/receiver/verify.c
test_receiver_tarx_SRCS := ref/receiver/tarx.c
