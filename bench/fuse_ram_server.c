/* The ceiling of the kernel's /dev/fuse path for bench/fuse_bench.py: a
 * minimal single-threaded libfuse 3 low-level server with one file, "disk",
 * whose bytes live in RAM. It does what nvmegated's FUSE front end does per
 * request (direct I/O opens with parallel direct writes, 1 MiB max_write)
 * and nothing else: no NVMe command, no hand-off to another thread.
 *
 *   cc -O2 -o fuse_ram_server bench/fuse_ram_server.c $(pkg-config --cflags --libs fuse3)
 *   fuse_ram_server MOUNTPOINT SIZE_BYTES     (foreground; SIGTERM unmounts)
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define FILE_INO 2

static struct {
	unsigned char *ram;
	size_t size;
} disk;

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)disk.size;
		st->st_blksize = 4096;
	}
}

static void ram_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_background = 128;
	conn->congestion_threshold = 96;
	conn->want &= ~(unsigned)(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_WRITEBACK_CACHE);
}

static void ram_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "disk")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = e.entry_timeout = 3600;
	fill_attr(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ram_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void ram_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_open_out out;

	(void)fi;
	if (ino != FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* As nvmegated answers (libfuse 3.14 has no field for the second flag). */
	memset(&out, 0, sizeof(out));
	out.open_flags = FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
	fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

static void ram_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	if (off < 0 || (size_t)off >= disk.size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > disk.size - (size_t)off)
		size = disk.size - (size_t)off;
	fuse_reply_buf(req, (const char *)disk.ram + off, size);
}

static void ram_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	if (off < 0 || (size_t)off >= disk.size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	if (size > disk.size - (size_t)off)
		size = disk.size - (size_t)off;
	memcpy(disk.ram + off, buf, size);
	fuse_reply_write(req, size);
}

static void ram_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = ram_init,
	.lookup = ram_lookup,
	.getattr = ram_getattr,
	.open = ram_open,
	.read = ram_read,
	.write = ram_write,
	.fsync = ram_fsync,
};

int main(int argc, char **argv)
{
	char *fargv[] = { argv[0], "-o", "fsname=fuse_ram_server,default_permissions", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	int ret = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s MOUNTPOINT SIZE_BYTES\n", argv[0]);
		return 2;
	}
	disk.size = strtoull(argv[2], NULL, 0);
	disk.ram = mmap(NULL, disk.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (disk.ram == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(disk.ram, 0xa5, disk.size); /* touched: no page faults in the run */
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, argv[1]) == 0) {
			ret = fuse_session_loop(se) ? 1 : 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	return ret;
}
