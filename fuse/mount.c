/* The mountpoint before and after: checks that never touch a FUSE file
 * system (a hung one would hang us), stale-mount recovery, and aborting a
 * connection through fusectl.
 *
 * Our mounts are named "nvmegate:<pid>" (fsname), type fuse.nvmegate, so
 * /proc/self/mountinfo alone tells whether the daemon that mounted one is
 * still alive: a mount whose daemon is gone is stale and is lazily
 * unmounted; anything else mounted on the mountpoint makes it busy. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "lib/log.h"
#include "fuse/internal.h"

#define FUSECTL_DIR "/sys/fs/fuse/connections"

struct mnt_entry {
	char point[PATH_MAX];
	char fstype[64];
	char source[256];
	unsigned major, minor;
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* The topmost mount on path, from /proc/self/mountinfo. 1 found, 0 not,
 * -errno. */
static int find_mount(const char *path, struct mnt_entry *out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root point options [optional...] - type source super */
		char *save = NULL, *tok, *fields[6] = { 0 };
		char *dash = strstr(line, " - ");
		int i = 0;

		if (!dash)
			continue;
		*dash = '\0';
		for (tok = strtok_r(line, " ", &save); tok && i < 6; tok = strtok_r(NULL, " ", &save))
			fields[i++] = tok;
		if (i < 5)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], path))
			continue;
		/* Later lines are mounted on top: keep the last match. */
		memset(out, 0, sizeof(*out));
		snprintf(out->point, sizeof(out->point), "%s", fields[4]);
		if (sscanf(fields[2], "%u:%u", &out->major, &out->minor) != 2)
			continue;
		save = NULL;
		tok = strtok_r(dash + 3, " \n", &save);
		snprintf(out->fstype, sizeof(out->fstype), "%s", tok ? tok : "");
		tok = strtok_r(NULL, " \n", &save);
		if (tok)
			unescape(tok);
		snprintf(out->source, sizeof(out->source), "%s", tok ? tok : "");
		found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

/* The pid in our fsname "nvmegate:<pid>", or 0. */
static pid_t mount_owner(const struct mnt_entry *m)
{
	long pid;
	char *end;

	if (strcmp(m->fstype, "fuse.nvmegate") || strncmp(m->source, "nvmegate:", 9))
		return 0;
	pid = strtol(m->source + 9, &end, 10);
	return *end || pid <= 0 ? 0 : (pid_t)pid;
}

/* Is pid a running nvmegated? Not if the pid was reused, nor if it is a
 * zombie: a killed daemon's connection is already gone. */
static bool daemon_alive(pid_t pid)
{
	char path[64], stat[256] = "", *close_paren;
	FILE *f;

	if (kill(pid, 0) && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = '\0';
	fclose(f);
	/* "pid (comm) state ...": comm may hold anything, so parse from the
	 * last parenthesis. */
	close_paren = strrchr(stat, ')');
	if (!close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z' || close_paren[2] == 'X')
		return false;
	return strstr(stat, "(nvmegated)") != NULL;
}

/* The mountpoint's canonical path without resolving its last component:
 * stat-ing a dead FUSE mount fails, a hung one blocks. */
static int canon(const char *mnt, char *out, size_t outlen)
{
	char tmp[PATH_MAX], *slash, *dir;
	size_t len;
	int n;

	snprintf(tmp, sizeof(tmp), "%s", mnt);
	len = strlen(tmp);
	while (len > 1 && tmp[len - 1] == '/')
		tmp[--len] = '\0';
	slash = strrchr(tmp, '/');
	if (!slash || slash[1] == '\0' || !strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
		return -EINVAL;
	*slash = '\0';
	dir = realpath(slash == tmp ? "/" : tmp, NULL);
	if (!dir)
		return -errno;
	n = snprintf(out, outlen, "%s/%s", strcmp(dir, "/") ? dir : "", slash + 1);
	free(dir);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int nvmg_fuse_prepare_mountpoint(const char *mnt, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct mnt_entry m;
	struct stat st;
	int ret;

	ret = canon(mnt, path, sizeof(path));
	if (ret) {
		snprintf(err, errlen, "FUSE mountpoint %s: %s", mnt,
			 ret == -ENOENT ? "its parent folder does not exist" : strerror(-ret));
		return ret;
	}
	/* A crash can leave mounts stacked: clear every stale one. */
	for (int tries = 0; tries < 16; tries++) {
		pid_t owner;

		ret = find_mount(path, &m);
		if (ret < 0) {
			snprintf(err, errlen, "FUSE mountpoint %s: reading mountinfo: %s", mnt,
				 strerror(-ret));
			return ret;
		}
		if (!ret)
			break;
		owner = mount_owner(&m);
		if (!owner) {
			snprintf(err, errlen, "FUSE mountpoint %s is busy: a %s file system (%s) is "
				 "mounted there", mnt, m.fstype, m.source);
			return -EBUSY;
		}
		if (owner == getpid() || daemon_alive(owner)) {
			snprintf(err, errlen, "FUSE mountpoint %s is busy: nvmegated (pid %d) has it "
				 "mounted", mnt, (int)owner);
			return -EBUSY;
		}
		if (umount2(path, MNT_DETACH)) {
			ret = -errno;
			snprintf(err, errlen, "FUSE mountpoint %s: stale mount of nvmegated pid %d: "
				 "umount: %s", mnt, (int)owner, strerror(-ret));
			return ret;
		}
		log_warn("FUSE mountpoint %s: stale mount of nvmegated pid %d (gone) lazily unmounted",
			 mnt, (int)owner);
	}
	if (stat(path, &st)) {
		ret = -errno;
		snprintf(err, errlen, "FUSE mountpoint %s %s", mnt,
			 ret == -ENOENT ? "does not exist (create the folder first)" : strerror(-ret));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "FUSE mountpoint %s is not a folder", mnt);
		return -ENOTDIR;
	}
	return 0;
}

int nvmg_fuse_mount_dev(const char *mnt, dev_t *dev)
{
	char path[PATH_MAX];
	struct mnt_entry m;
	int ret = canon(mnt, path, sizeof(path));

	if (ret)
		return ret;
	ret = find_mount(path, &m);
	if (ret <= 0)
		return ret ? ret : -ENOENT;
	*dev = makedev(m.major, m.minor);
	return 0;
}

static int write_abort(dev_t dev)
{
	char path[96];
	int fd, ret = 0;

	/* fusectl names a connection by the minor of its device. */
	snprintf(path, sizeof(path), FUSECTL_DIR "/%u/abort", minor(dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

int nvmg_fuse_abort_conn(dev_t dev)
{
	int ret = write_abort(dev);

	if (ret != -ENOENT)
		return ret;
	/* Minimal systems may not mount fusectl; do it for them. */
	if (mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) && errno != EBUSY)
		return -errno;
	return write_abort(dev);
}
