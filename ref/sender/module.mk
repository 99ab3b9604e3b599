# walsim-sender: serves a directory of WAL segments to replication clients.
PROGRAMS += walsim-sender
walsim-sender_SRCS := $(wildcard ref/sender/*.c)
walsim-sender_LIBS := -lcrypto

# unit tests of the pure parts
test_sender_scram_SRCS := ref/sender/scram.c
test_sender_scram_LIBS := -lcrypto
test_sender_command_SRCS := ref/sender/command.c
test_sender_auth_SRCS := ref/sender/auth.c
test_sender_auth_LIBS := -lcrypto
test_sender_walsource_SRCS := ref/sender/walsource.c ref/sender/slots.c
test_sender_options_SRCS := ref/sender/options.c ref/sender/auth.c
test_sender_options_LIBS := -lcrypto
