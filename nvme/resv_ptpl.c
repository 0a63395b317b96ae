/* Persist Through Power Loss: a namespace's registrants, holder, type and
 * generation in one text file of the state folder, replaced atomically
 * (temporary file, fsync, rename, fsync of the folder) on every change, so
 * a crash leaves the old state or the new one, never half of either. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/log.h"
#include "nvme/resv_int.h"

#define STATE_MAGIC "nvmegate reservation state 1"

static void hex_of(char out[33], const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int id_of(uint8_t id[16], const char *hex)
{
	if (strlen(hex) != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		id[i] = (uint8_t)v;
	}
	return 0;
}

/* File names from NQNs: bytes outside [A-Za-z0-9.:_-] become %XX, so no
 * NQN reaches outside the folder or collides with another. */
char *nvmg_resv_state_path(const char *dir, const char *nqn, uint32_t nsid)
{
	size_t n = strlen(dir) + 3 * strlen(nqn) + 32;
	char *p = malloc(n), *w;

	if (!p)
		return NULL;
	w = p + snprintf(p, n, "%s/", dir);
	for (const unsigned char *s = (const unsigned char *)nqn; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		    *s == '.' || *s == ':' || *s == '_' || *s == '-')
			*w++ = (char)*s;
		else
			w += sprintf(w, "%%%02X", *s);
	}
	snprintf(w, n - (size_t)(w - p), "-n%" PRIu32 ".resv", nsid);
	return p;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

struct nvmg_resv_reg *nvmg_resv_add_reg(struct nvmg_resv *r, const uint8_t hostid[16], uint64_t rkey)
{
	if (r->nr_regs == r->cap_regs) {
		size_t cap = r->cap_regs ? r->cap_regs * 2 : 4;
		struct nvmg_resv_reg *n = realloc(r->regs, cap * sizeof(*n));

		if (!n)
			return NULL;
		r->regs = n;
		r->cap_regs = cap;
	}
	memcpy(r->regs[r->nr_regs].hostid, hostid, 16);
	r->regs[r->nr_regs].rkey = rkey;
	return &r->regs[r->nr_regs++];
}

int nvmg_resv_save(struct nvmg_resv *r)
{
	size_t n = strlen(r->path) + 5;
	char *tmp = malloc(n), hex[33];
	FILE *f;
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp", r->path);
	if (mkdir(r->dir, 0700) && errno != EEXIST) {
		ret = -errno;
		goto out;
	}
	f = fopen(tmp, "we");
	if (!f) {
		ret = -errno;
		goto out;
	}
	fprintf(f, "%s\nnsid %" PRIu32 "\ngen %" PRIu32 "\nrtype %u\n", STATE_MAGIC, r->nsid, r->gen,
		(unsigned)atomic_load(&r->rtype));
	hex_of(hex, r->holder);
	fprintf(f, "holder %s\n", hex);
	for (size_t i = 0; i < r->nr_regs; i++) {
		hex_of(hex, r->regs[i].hostid);
		fprintf(f, "reg %s %016" PRIx64 "\n", hex, r->regs[i].rkey);
	}
	if (fflush(f) || fsync(fileno(f)))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, r->path))
		ret = -errno;
	if (!ret)
		ret = fsync_dir(r->dir);
	if (ret)
		unlink(tmp);
out:
	free(tmp);
	return ret;
}

int nvmg_resv_unsave(struct nvmg_resv *r)
{
	if (unlink(r->path))
		return errno == ENOENT ? 0 : -errno;
	return fsync_dir(r->dir);
}

int nvmg_resv_load(struct nvmg_resv *r, char *err, size_t errlen)
{
	FILE *f = fopen(r->path, "re");
	char line[256], hex[64];
	unsigned long long key;
	unsigned v;
	int ret = 0, lineno = 0;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		snprintf(err, errlen, "%s: %s", r->path, strerror(-ret));
		return ret;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC))
				ret = -EINVAL;
		} else if (sscanf(line, "nsid %u", &v) == 1) {
			if (v != r->nsid)
				ret = -EINVAL;
		} else if (sscanf(line, "gen %u", &v) == 1) {
			r->gen = v;
		} else if (sscanf(line, "rtype %u", &v) == 1) {
			if (v > NVME_RESERVATION_RTYPE_EAAR)
				ret = -EINVAL;
			else
				atomic_store(&r->rtype, (uint8_t)v);
		} else if (sscanf(line, "holder %63s", hex) == 1) {
			ret = id_of(r->holder, hex);
		} else if (sscanf(line, "reg %63s %llx", hex, &key) == 2) {
			uint8_t id[16];

			ret = id_of(id, hex);
			if (!ret)
				ret = nvmg_resv_add_reg(r, id, key) ? 0 : -ENOMEM;
		} else {
			ret = -EINVAL;
		}
	}
	if (!ret && lineno == 0)
		ret = -EINVAL;
	/* A reservation left without registrants cannot be right. */
	if (!ret && atomic_load(&r->rtype) && !r->nr_regs)
		ret = -EINVAL;
	fclose(f);
	if (ret) {
		snprintf(err, errlen, "%s: line %d: %s (fix or remove the file)", r->path, lineno,
			 ret == -EINVAL ? "not a reservation state file" : strerror(-ret));
		return ret;
	}
	r->ptpl = true;
	return 0;
}

/* ---- around a command ---- */

bool nvmg_resv_snapshot(struct nvmg_resv *r, struct nvmg_resv_snapshot *s)
{
	s->nr_regs = r->nr_regs;
	s->regs = malloc((r->nr_regs + 1) * sizeof(*s->regs));
	if (!s->regs)
		return false;
	if (r->nr_regs) /* regs may be NULL */
		memcpy(s->regs, r->regs, r->nr_regs * sizeof(*s->regs));
	s->rtype = atomic_load(&r->rtype);
	memcpy(s->holder, r->holder, 16);
	s->gen = r->gen;
	s->ptpl = r->ptpl;
	return true;
}

/* The file is written before the command completes: a host told "done"
 * finds that state after a restart. A failed write undoes the command, so
 * memory and file never disagree. */
uint16_t nvmg_resv_commit(struct nvmg_resv *r, struct nvmg_resv_snapshot *s, uint16_t status)
{
	int ret = 0;

	if (!status && r->path) {
		if (r->ptpl)
			ret = nvmg_resv_save(r);
		else if (s->ptpl)
			ret = nvmg_resv_unsave(r);
		if (ret) {
			log_err("namespace %u: reservation state %s: %s", r->nsid, r->path,
				strerror(-ret));
			/* cap_regs never shrinks: the old array fits. */
			if (s->nr_regs)
				memcpy(r->regs, s->regs, s->nr_regs * sizeof(*s->regs));
			r->nr_regs = s->nr_regs;
			atomic_store_explicit(&r->rtype, s->rtype, memory_order_relaxed);
			memcpy(r->holder, s->holder, 16);
			r->gen = s->gen;
			r->ptpl = s->ptpl;
			status = NVMG_SC_GENERIC(NVME_SC_INTERNAL);
		}
	}
	free(s->regs);
	return status;
}

