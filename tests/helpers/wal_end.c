/*
 * wal-end — test helper: where libwalsim finds valid WAL to end in a
 * directory of segment files, as one JSON line, for the tests that compare
 * it with what a live server of each major says about its own WAL
 * (tests/versions).
 *
 *   wal-end DIR TLI START_LSN
 *
 * The page magic (hence the major) is taken from the first segment at or
 * after START_LSN; the output names it:
 *   {"major":17,"magic":"D116","valid_end":"0/3000148","last_record":"0/30000D8",
 *    "records":12,"status":1,"message":"..."}
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/json.h"
#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "walsim/waldir.h"
#include "walsim/walpage.h"

int
main(int argc, char **argv)
{
	WalDirConfig cfg;
	WalDirResult res;
	WalsimError err;
	uint64_t	start;
	unsigned long tli;
	char		path[4096],
				name[WAL_FILE_NAME_MAX],
				magic[8],
				buf[2048];
	uint8_t		head[WAL_LONG_PHD_SIZE];
	FILE	   *f;
	WalPageHeader hdr;
	const WalVersionInfo *v;
	JsonBuf		j;

	if (argc != 4 || (tli = strtoul(argv[2], NULL, 10)) == 0 || !lsn_parse(argv[3], &start, &err))
	{
		fprintf(stderr, "usage: wal-end DIR TLI START_LSN\n");
		return 2;
	}
	/* 16 MB segments are assumed only to find the first file; its long header says the truth */
	memset(&cfg, 0, sizeof(cfg));
	for (uint32_t seg = 1u << 20; seg <= 1u << 30; seg <<= 1)
	{
		wal_segment_name(name, (uint32_t) tli, start / seg, seg);
		snprintf(path, sizeof(path), "%s/%s", argv[1], name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		if (fread(head, 1, sizeof(head), f) == sizeof(head) &&
			wal_page_header_decode(head, sizeof(head), &hdr, &err) && hdr.is_long && hdr.seg_size == seg)
		{
			cfg.seg_size = seg;
			cfg.magic = hdr.magic;
		}
		fclose(f);
		if (cfg.seg_size)
			break;
	}
	if (cfg.seg_size == 0)
	{
		fprintf(stderr, "wal-end: no segment of timeline %lu holding %s in %s\n", tli, argv[3], argv[1]);
		return 1;
	}
	v = wal_version_by_magic(cfg.magic);
	if (v == NULL)
	{
		fprintf(stderr, "wal-end: %s: %s\n", path, wal_magic_describe(cfg.magic, buf, sizeof(buf)));
		return 1;
	}
	cfg.dir = argv[1];
	cfg.tli = (uint32_t) tli;
	cfg.start_lsn = start;
	if (!waldir_find_end(&cfg, &res, &err))
	{
		fprintf(stderr, "wal-end: %s\n", err.message);
		return 1;
	}
	snprintf(magic, sizeof(magic), "%04X", cfg.magic);
	json_init(&j, buf, sizeof(buf));
	json_object_begin(&j, NULL);
	json_i64(&j, "major", v->major);
	json_str(&j, "magic", magic);
	json_lsn(&j, "valid_end", res.valid_end);
	json_lsn(&j, "last_record", res.last_record);
	json_u64(&j, "records", res.records);
	json_i64(&j, "status", res.status);
	json_str(&j, "message", res.message);
	json_object_end(&j);
	printf("%s\n", buf);
	return 0;
}
