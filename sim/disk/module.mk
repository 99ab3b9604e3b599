# sim/disk — the disk fault simulator (see docs/disk.md).
DISK_COMMON_SRCS := sim/disk/rules.c sim/disk/glob.c sim/disk/region.c sim/disk/journal.c

SHLIBS += libwalsim-disk
libwalsim-disk_SRCS := sim/disk/interpose.c $(DISK_COMMON_SRCS)
libwalsim-disk_LIBS := -ldl

PROGRAMS += walsim-diskctl
walsim-diskctl_SRCS := sim/disk/diskctl.c $(DISK_COMMON_SRCS)

# file-operation driver the preload unit tests run with LD_PRELOAD
TEST_HELPERS += disk-probe
disk-probe_SRCS := sim/disk/testprobe.c sim/disk/rules.c

test_disk_rules_SRCS := $(DISK_COMMON_SRCS)
test_disk_preload_SRCS := $(DISK_COMMON_SRCS)
