/*
 * tarx.c — unpack the tar stream of a BASE_BACKUP (tarx.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tarx.h"

/* ustar header fields (offset, length) */
#define H_NAME		0
#define H_NAME_LEN	100
#define H_MODE		100
#define H_SIZE		124
#define H_CHKSUM	148
#define H_TYPE		156
#define H_PREFIX	345
#define H_PREFIX_LEN 155

void
tarx_init(TarExtract *t, int dirfd, mode_t file_mode, bool do_sync)
{
	memset(t, 0, sizeof(*t));
	t->dirfd = dirfd;
	t->file_mode = file_mode;
	t->do_sync = do_sync;
	t->fd = -1;
}

/* An octal field (spaces and NULs around the digits allowed). */
static bool
octal_field(const uint8_t *p, size_t len, uint64_t *out)
{
	uint64_t	v = 0;
	size_t		i = 0;
	bool		digits = false;

	while (i < len && p[i] == ' ')
		i++;
	for (; i < len && p[i] >= '0' && p[i] <= '7'; i++)
	{
		if (v > (UINT64_MAX >> 3))
			return false;
		v = (v << 3) | (uint64_t) (p[i] - '0');
		digits = true;
	}
	for (; i < len; i++)
		if (p[i] != ' ' && p[i] != '\0')
			return false;
	*out = v;
	return digits;
}

bool
tarx_parse_header(const uint8_t *block, char *name, size_t name_size, char *type,
				  uint64_t *size, mode_t *mode, bool *is_zero, WalsimError *err)
{
	uint64_t	stored,
				sum = 0,
				m;
	size_t		nlen,
				plen;

	*is_zero = true;
	for (int i = 0; i < TARX_BLOCK; i++)
		if (block[i] != 0)
		{
			*is_zero = false;
			break;
		}
	if (*is_zero)
		return true;
	for (int i = 0; i < TARX_BLOCK; i++)
		sum += (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : block[i];
	if (!octal_field(block + H_CHKSUM, 8, &stored) || stored != sum)
		return walsim_error_set(err, "tar header checksum mismatch (stored %.8s, computed %llo)",
								(const char *) block + H_CHKSUM, (unsigned long long) sum);
	nlen = strnlen((const char *) block + H_NAME, H_NAME_LEN);
	plen = strnlen((const char *) block + H_PREFIX, H_PREFIX_LEN);
	if (plen + 1 + nlen + 1 > name_size)
		return walsim_error_set(err, "tar member name too long");
	if (plen > 0)
		snprintf(name, name_size, "%.*s/%.*s", (int) plen, (const char *) block + H_PREFIX,
				 (int) nlen, (const char *) block + H_NAME);
	else
		snprintf(name, name_size, "%.*s", (int) nlen, (const char *) block + H_NAME);
	*type = (char) block[H_TYPE];
	if (block[H_SIZE] & 0x80)
	{
		/* base-256 (GNU), which PostgreSQL writes for files of 8 GB and more */
		uint64_t	v = 0;

		for (int i = 1; i < 12; i++)
		{
			if (v > (UINT64_MAX >> 8))
				return walsim_error_set(err, "tar member \"%s\": size does not fit in 64 bits", name);
			v = (v << 8) | block[H_SIZE + i];
		}
		*size = v;
	}
	else if (!octal_field(block + H_SIZE, 12, size))
		return walsim_error_set(err, "tar member \"%s\": invalid size field \"%.12s\"",
								name, (const char *) block + H_SIZE);
	if (!octal_field(block + H_MODE, 8, &m))
		return walsim_error_set(err, "tar member \"%s\": invalid mode field", name);
	*mode = (mode_t) (m & 07777);
	return true;
}

/* A relative name without "..", "." only as a leading "./", no empty components. */
static bool
check_name(char *name, WalsimError *err)
{
	char	   *p = name;
	size_t		n = strlen(name);

	while (n > 0 && name[n - 1] == '/')
		name[--n] = '\0';
	while (strncmp(p, "./", 2) == 0)
		p += 2;
	if (p != name)
		memmove(name, p, strlen(p) + 1);
	if (name[0] == '\0' || name[0] == '/')
		return walsim_error_set(err, "tar member \"%s\": not a relative name", name);
	for (const char *c = name; *c != '\0';)
	{
		const char *slash = strchr(c, '/');
		size_t		len = slash ? (size_t) (slash - c) : strlen(c);

		if (len == 0 || (len == 2 && strncmp(c, "..", 2) == 0) || (len == 1 && c[0] == '.'))
			return walsim_error_set(err, "tar member \"%s\": name leaves the directory or has an empty component",
									name);
		c += len + (slash ? 1 : 0);
	}
	return true;
}

static bool
close_file(TarExtract *t, WalsimError *err)
{
	int			fd = t->fd;

	t->fd = -1;
	if (fd < 0)
		return true;
	if (t->do_sync && fsync(fd) != 0)
	{
		int			e = errno;

		close(fd);
		return walsim_error_set(err, "could not fsync file \"%s\": %s", t->name, strerror(e));
	}
	if (close(fd) != 0)
		return walsim_error_set(err, "could not close file \"%s\": %s", t->name, strerror(errno));
	return true;
}

/* A complete header is in t->header: create the member. */
static bool
start_member(TarExtract *t, WalsimError *err)
{
	char		type;
	uint64_t	size;
	mode_t		mode;
	bool		is_zero;

	if (!tarx_parse_header(t->header, t->name, sizeof(t->name), &type, &size, &mode, &is_zero, err))
		return false;
	if (is_zero)
	{
		t->ended = true;
		return true;
	}
	if (!check_name(t->name, err))
		return false;
	switch (type)
	{
		case '5':
			if (mkdirat(t->dirfd, t->name, 0700) != 0)
			{
				struct stat st;

				if (errno != EEXIST || fstatat(t->dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
					!S_ISDIR(st.st_mode))
					return walsim_error_set(err, "could not create directory \"%s\": %s",
											t->name, strerror(errno == 0 ? EEXIST : errno));
			}
			/* 0700, or 0750 when the server's files are group-readable */
			if (fchmodat(t->dirfd, t->name, (t->file_mode & 0040) ? 0750 : 0700, 0) != 0)
				return walsim_error_set(err, "could not set permissions of directory \"%s\": %s",
										t->name, strerror(errno));
			t->dirs++;
			size = 0;
			break;
		case '0':
		case '\0':
			t->fd = openat(t->dirfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
						   t->file_mode);
			if (t->fd < 0)
				return walsim_error_set(err, "could not create file \"%s\": %s", t->name, strerror(errno));
			t->files++;
			break;
		case '2':
			return walsim_error_set(err, "tar member \"%s\" is a symbolic link (a tablespace?): "
									"only the data directory is supported", t->name);
		default:
			return walsim_error_set(err, "tar member \"%s\" has unsupported type '%c'", t->name,
									type >= 32 && type < 127 ? type : '?');
	}
	(void) mode;
	t->data_left = size;
	t->pad_left = (TARX_BLOCK - size % TARX_BLOCK) % TARX_BLOCK;
	t->in_data = true;
	if (size == 0 && t->fd >= 0 && !close_file(t, err))
		return false;
	return true;
}

bool
tarx_feed(TarExtract *t, const uint8_t *data, size_t len, WalsimError *err)
{
	while (len > 0)
	{
		if (t->ended)
		{
			/* after the end marker only zero padding may follow */
			for (size_t i = 0; i < len; i++)
				if (data[i] != 0)
					return walsim_error_set(err, "data after the end of the tar archive");
			return true;
		}
		if (!t->in_data)
		{
			size_t		n = TARX_BLOCK - t->header_fill;

			if (n > len)
				n = len;
			memcpy(t->header + t->header_fill, data, n);
			t->header_fill += n;
			data += n;
			len -= n;
			if (t->header_fill == TARX_BLOCK)
			{
				t->header_fill = 0;
				if (!start_member(t, err))
					return false;
			}
			continue;
		}
		if (t->data_left > 0)
		{
			size_t		n = t->data_left < len ? (size_t) t->data_left : len;
			size_t		done = 0;

			while (done < n)
			{
				ssize_t		w = write(t->fd, data + done, n - done);

				if (w < 0)
				{
					if (errno == EINTR)
						continue;
					return walsim_error_set(err, "could not write file \"%s\": %s", t->name, strerror(errno));
				}
				done += (size_t) w;
			}
			t->data_left -= n;
			t->bytes += n;
			data += n;
			len -= n;
			if (t->data_left == 0 && !close_file(t, err))
				return false;
			continue;
		}
		if (t->pad_left > 0)
		{
			size_t		n = t->pad_left < len ? (size_t) t->pad_left : len;

			t->pad_left -= n;
			data += n;
			len -= n;
		}
		if (t->pad_left == 0)
			t->in_data = false;
	}
	if (t->in_data && t->data_left == 0 && t->pad_left == 0)
		t->in_data = false;
	return true;
}

bool
tarx_finish(TarExtract *t, WalsimError *err)
{
	if (t->in_data && t->data_left == 0 && t->pad_left == 0)
		t->in_data = false;
	if (t->in_data || t->header_fill != 0)
	{
		tarx_abort(t);
		return walsim_error_set(err, "tar archive ends in the middle of member \"%s\"",
								t->in_data ? t->name : "(header)");
	}
	return close_file(t, err);
}

void
tarx_abort(TarExtract *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}
