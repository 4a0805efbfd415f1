/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/remote.c - vigil-replay's server mode: the same stream sent
 * to running vigild replicas through the C client, in batches of RP_BATCH
 * rows, with pacing (--rate or --speed), --concurrency senders each owning
 * the cards that hash to it (per-card order kept), labels at their label
 * time, and with --nightly vigil-rebuild run between days and the servers
 * probed until they switch to the new generation. Hits come back by rule
 * name and get indices as first seen (rp_names).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "replay.h"
#include "txn_client.h"

int
rp_names_index(rp_names *t, const char *name, int32_t points)
{
	int idx = -1;

	pthread_mutex_lock(&t->mu);
	for (uint32_t i = 0; i < t->n; i++) {
		if (strcmp(t->names[i], name) == 0) {
			idx = (int)i;
			break;
		}
	}
	if (idx < 0 && t->n < METRICS_MAX_RULES) {
		t->names[t->n] = strdup(name);
		t->points[t->n] = points;
		if (t->names[t->n] != NULL)
			idx = (int)t->n++;
	}
	pthread_mutex_unlock(&t->mu);
	return idx;
}

typedef struct rp_batch {
	rp           *r;
	rp_row       *rows;
	rp_outcome   *outs;
	uint32_t     *part;
	size_t        n;
	size_t        lo, hi;       /* the window the senders are in: rows[lo..hi) */
	uint64_t      first_index;  /* global index of rows[0] (for --rate) */
	uint64_t      t0_ns;        /* pacing origin */
	uint64_t      errors;       /* calls that failed or were refused */
	uint64_t      refused;      /* of them, refused by the server (rp_refusal) */
	uint64_t      conflicts;    /* of those, a txn_id reused (rp_conflict) */
	uint64_t      not_sent;     /* rows after giving up: never sent */
	atomic_uint_fast64_t consecutive; /* failures in a row, all senders */
	atomic_bool   give_up;
	pthread_mutex_t mu;
} rp_batch;

/* A run of failures this long means the servers are gone: stop, do not
 * time out row by row for hours. */
#define RP_GIVE_UP_AFTER 50

typedef struct rp_worker {
	rp_batch *b;
	uint32_t  id;
	pthread_t th;
} rp_worker;

static void
rp_sleep_until(uint64_t t_ns)
{
	uint64_t now = vigil_mono_ns();

	if (t_ns > now) {
		struct timespec ts = { (time_t)((t_ns - now) / 1000000000u),
			(long)((t_ns - now) % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

/* Whether the server answered e and refused the transaction: it was not
 * scored nor archived, so it has no outcome. The others (no reply,
 * overloaded, unavailable, internal: failed) got no acknowledgement after
 * the client's retries with the same txn_id. Neither kind has its label
 * sent: vigild records a label for any txn_id without looking for the
 * transaction, and a label of one never scored would be joined to nothing,
 * or to a later transaction given that txn_id. */
bool
rp_refusal(vigil_client_err e)
{
	return e == VIGIL_CLIENT_SINVALID || e == VIGIL_CLIENT_SMALFORMED ||
	    e == VIGIL_CLIENT_STOOBIG || e == VIGIL_CLIENT_SUNSUPPORTED;
}

/* Whether the refusal is vigild's answer to a txn_id reused for another
 * transaction (docs/protocol.md, "Retries and reused ids"): INVALID on
 * txn.txn_id. The row's own txn_id passed the reader's checks, which are
 * vigild's, so on this field it can only be the conflict. */
static bool
rp_conflict(vigil_client_err e, const vigil_client_errinfo *info)
{
	return e == VIGIL_CLIENT_SINVALID && strcmp(info->field, "txn.txn_id") == 0;
}

static void *
rp_worker_main(void *arg)
{
	rp_worker *w = arg;
	rp_batch *b = w->b;
	rp *r = b->r;

	for (size_t i = b->lo; i < b->hi; i++) {
		vigil_client_txn ct;
		vigil_client_result res;
		vigil_client_errinfo info;
		vigil_client_err e;
		rp_outcome *out = &b->outs[i];
		uint64_t t1;

		if (b->part[i] != w->id)
			continue;
		/* what an unanswered or refused row leaves unread stays false */
		out->late = out->past_horizon = false;
		if (atomic_load(&b->give_up)) {
			/* no outcome, no label; counted apart from failed */
			out->failed = true;
			out->refused = false;
			pthread_mutex_lock(&b->mu);
			b->not_sent++;
			pthread_mutex_unlock(&b->mu);
			continue;
		}
		if (r->o.rate > 0)
			rp_sleep_until(b->t0_ns + (uint64_t)((double)(b->first_index + i) * 1e9 / r->o.rate));
		else if (r->o.speed > 0)
			rp_sleep_until(b->t0_ns + (uint64_t)((double)(b->rows[i].txn.event_time_ms -
			    r->first_event) * 1e6 / r->o.speed));
		vigil_tools_txn_to_client(&b->rows[i].txn, &ct);
		memset(&res, 0, sizeof res);
		t1 = vigil_mono_ns();
		e = vigil_client_score(r->client, &ct, NULL, &res, &info);
		if (e != VIGIL_CLIENT_OK) {
			bool conflict = rp_conflict(e, &info);

			out->refused = rp_refusal(e);
			out->failed = !out->refused;
			pthread_mutex_lock(&b->mu);
			b->refused += out->refused && !conflict;
			b->conflicts += conflict;
			/* where the row was read: SEGMENT:OFFSET as offline, or the CSV line */
			if (b->errors++ < RP_MAX_ERRORS_SHOWN)
				fprintf(stderr, "vigil-replay: %s:%" PRIu64 ": txn_id \"%s\": %s%s%s\n",
				    b->rows[i].segment[0] ? b->rows[i].segment : r->src.name,
				    b->rows[i].segment[0] ? b->rows[i].offset : b->rows[i].line, ct.txn_id,
				    info.field, info.field[0] ? ": " : "", info.message);
			if (!atomic_load(&b->give_up) && e != VIGIL_CLIENT_SINVALID) {
				bool any = false;
				for (size_t k = 0; k < vigil_client_nreplicas(r->client); k++)
					any |= vigil_client_replica_connected(r->client, k);
				if (!any) {
					atomic_store(&b->give_up, true);
					fprintf(stderr, "vigil-replay: no server is connected any more: "
					    "giving up\n");
				} else if (atomic_fetch_add(&b->consecutive, 1) + 1 >= RP_GIVE_UP_AFTER) {
					atomic_store(&b->give_up, true);
					fprintf(stderr, "vigil-replay: %d failures in a row: giving up\n",
					    RP_GIVE_UP_AFTER);
				}
			}
			pthread_mutex_unlock(&b->mu);
			continue;
		}
		if (atomic_load(&b->consecutive) != 0)
			atomic_store(&b->consecutive, 0);
		out->latency_us = (uint32_t)((vigil_mono_ns() - t1) / 1000u);
		if (out->latency_us == 0)
			out->latency_us = 1;
		out->score = res.score;
		out->decision = (vigil_decision)res.decision;
		out->generation = res.features_generation;
		out->late = res.late;
		out->past_horizon = res.past_dedupe_horizon;
		/* the model's part, as the server gave it (ScoreReply.model) */
		out->model_score = res.has_model ? res.model_score : NAN;
		out->nreasons = 0;
		for (size_t k = 0; k < res.nmodel_reasons && out->nreasons < APP_REASONS_MAX; k++) {
			uint32_t slot;

			/* names kept as the schema's own (static) strings */
			if (store_schema_find(res.model_reasons[k].feature, &slot) != VIGIL_OK)
				continue;
			out->reasons[out->nreasons].feature = store_schema_field(slot)->name;
			out->reasons[out->nreasons].value = res.model_reasons[k].value;
			out->reasons[out->nreasons].contrib = (float)res.model_reasons[k].contribution;
			out->nreasons++;
		}
		out->nhits = out->nshadow = 0;
		for (size_t h = 0; h < res.nhits && out->nhits + out->nshadow < RP_MAX_HITS; h++) {
			int idx = rp_names_index(&r->names, res.hits[h].rule, res.hits[h].points);
			if (idx < 0)
				continue;
			out->hits[out->nhits + out->nshadow] = (uint16_t)idx;
			if (res.hits[h].shadow)
				out->nshadow++;
			else
				out->nhits++;
		}
		out->failed = false;
		out->refused = false;
		vigil_client_result_fini(&res);
	}
	return NULL;
}

#define RP_WINDOW_MS (3600 * 1000) /* event time one window of senders spans */

/*
 * The end of the window of rows that starts at lo: rows whose event times
 * span less than RP_WINDOW_MS. The senders go through a batch window by
 * window, waiting for each other at each end, so none runs ahead of
 * another by more than that much event time. Unbounded, a sender with few
 * rows could send the batch's last days while another was still on its
 * first, and vigild, whose live state takes no event 7 days behind the
 * newest it has seen, would not count the lagging sender's rows (late)
 * where the offline run, in stream order, does.
 */
static size_t
rp_window_end(const rp_batch *b, size_t lo)
{
	int64_t mn = b->rows[lo].txn.event_time_ms, mx = mn;
	size_t hi = lo + 1;

	for (; hi < b->n; hi++) {
		int64_t t = b->rows[hi].txn.event_time_ms;

		if (t < mn)
			mn = t;
		if (t > mx)
			mx = t;
		if (mx - mn >= RP_WINDOW_MS)
			break;
	}
	return hi;
}

static vigil_err
rp_server_batch(rp *r, rp_batch *b)
{
	rp_worker w[RP_MAX_CONCURRENCY];
	uint32_t n = r->o.concurrency;

	for (size_t i = 0; i < b->n; i++)
		b->part[i] = n == 1 ? 0 : (uint32_t)(XXH3_64bits(b->rows[i].txn.card_id,
		    strlen(b->rows[i].txn.card_id)) % n);
	for (b->lo = 0; b->lo < b->n; b->lo = b->hi) {
		/* one sender keeps stream order by itself: one window */
		b->hi = n == 1 ? b->n : rp_window_end(b, b->lo);
		for (uint32_t k = 0; k < n; k++) {
			w[k].b = b;
			w[k].id = k;
			if (pthread_create(&w[k].th, NULL, rp_worker_main, &w[k]) != 0) {
				for (uint32_t j = 0; j < k; j++)
					pthread_join(w[j].th, NULL);
				fprintf(stderr, "vigil-replay: cannot start worker threads\n");
				return VIGIL_ENOMEM;
			}
		}
		for (uint32_t k = 0; k < n; k++)
			pthread_join(w[k].th, NULL);
	}
	return VIGIL_OK;
}

static const char *
rp_find_rebuild(const rp_opts *o, char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n;

	if (o->rebuild != NULL)
		return o->rebuild;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			/* the build tree, then installed side by side */
			if (snprintf(buf, len, "%s/../../batch/vigil-rebuild", self) < (int)len &&
			    access(buf, X_OK) == 0)
				return buf;
			if (snprintf(buf, len, "%s/vigil-rebuild", self) < (int)len &&
			    access(buf, X_OK) == 0)
				return buf;
		}
	}
	return "vigil-rebuild"; /* PATH */
}

/* Server mode night: labels, vigil-rebuild, wait until the server reads it. */
static vigil_err
rp_server_night(rp *r, int64_t day, const rp_row *probe)
{
	char date[16], rb[PATH_MAX], threads[16];
	const char *prog = rp_find_rebuild(&r->o, rb, sizeof rb);
	const char *argv[16];
	int argc = 0, st;
	pid_t pid;
	vigil_err rv;
	uint64_t t0 = vigil_mono_ns();

	rv = rp_labels_due(r, day * VIGIL_MS_PER_DAY);
	if (rv != VIGIL_OK)
		return rv;
	vigil_date_format(day * VIGIL_MS_PER_DAY, date, sizeof date);
	argv[argc++] = prog;
	argv[argc++] = "--data";
	argv[argc++] = r->o.data;
	argv[argc++] = "--as-of";
	argv[argc++] = date;
	if (r->o.rules != NULL) {
		argv[argc++] = "--rules";
		argv[argc++] = r->o.rules;
	}
	if (r->o.train_every != NULL) {
		argv[argc++] = "--train-every";
		argv[argc++] = r->o.train_every;
	}
	if (r->o.no_model)
		argv[argc++] = "--no-model"; /* as offline --nightly's rebuilds */
	if (r->o.rebuild_threads_set) {
		snprintf(threads, sizeof threads, "%u", r->o.rebuild_threads);
		argv[argc++] = "--threads";
		argv[argc++] = threads;
	}
	argv[argc++] = "--quiet";
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execvp(prog, (char *const *)argv);
		fprintf(stderr, "vigil-replay: %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		fprintf(stderr, "vigil-replay: cannot run %s: %s\n", prog, strerror(errno));
		return VIGIL_EIO;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "vigil-replay: %s --as-of %s failed (status %d)\n", prog, date,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return VIGIL_EIO;
	}
	r->nightly_runs++;
	/* the server switches generation on its own timer: probe with dry runs */
	if (probe != NULL) {
		vigil_client_txn ct;
		vigil_client_callopts co = { .dry_run = true };
		uint64_t deadline = vigil_mono_ns() + 10000000000ull;
		vigil_tools_txn_to_client(&probe->txn, &ct);
		for (;;) {
			vigil_client_result res;
			vigil_client_errinfo info;
			uint64_t g = 0;
			memset(&res, 0, sizeof res);
			if (vigil_client_score(r->client, &ct, &co, &res, &info) == VIGIL_CLIENT_OK) {
				g = res.features_generation;
				vigil_client_result_fini(&res);
			}
			if (g > r->last_generation) {
				r->last_generation = g;
				break;
			}
			if (vigil_mono_ns() > deadline) {
				fprintf(stderr, "vigil-replay: warning: the server did not switch to the "
				    "generation built as of %s within 10 s\n", date);
				break;
			}
			rp_sleep_until(vigil_mono_ns() + 50000000u);
		}
	}
	r->night_ns += vigil_mono_ns() - t0;
	return VIGIL_OK;
}

vigil_err
rp_server_open(rp *r)
{
	vigil_client_opts co = { .timeout_ms = 5000, .max_attempts = 3, .connect_wait_ms = 3000,
		.tls_cert = r->o.tls_cert, .tls_key = r->o.tls_key, .tls_ca = r->o.tls_ca,
		.tls_server_name = r->o.tls_server_name };
	vigil_client_errinfo info;
	bool any = false;

	if (vigil_client_open(r->o.servers, r->o.nservers, &co, &r->client, &info) !=
	    VIGIL_CLIENT_OK) {
		fprintf(stderr, "vigil-replay: %s\n", info.message);
		/* EINVAL: a bad URL, or a --tls-* file that cannot be read or
		 * parsed; ETRANSPORT: a URL nng refuses. Both are bad option
		 * values (exit 2, as vigil-score and vigil-console give them). */
		return info.code == VIGIL_CLIENT_EINVAL || info.code == VIGIL_CLIENT_ETRANSPORT ?
		    VIGIL_EINVAL : VIGIL_EIO;
	}
	/* fail fast: a replay against nothing would time out row by row */
	for (size_t i = 0; i < r->o.nservers; i++)
		any |= vigil_client_replica_connected(r->client, i);
	if (!any) {
		fprintf(stderr, "vigil-replay: no server reachable at %s%s within 3 s\n",
		    r->o.servers[0], r->o.nservers > 1 ? " (nor the other replicas)" : "");
		return VIGIL_EIO;
	}
	return VIGIL_OK;
}

vigil_err
rp_run_server(rp *r)
{
	rp_batch b;
	rp_row pending;
	bool have_pending = false, eof = false;
	vigil_err rv = VIGIL_OK;
	uint64_t index = 0;

	memset(&b, 0, sizeof b);
	b.r = r;
	b.rows = malloc(RP_BATCH * sizeof *b.rows);
	b.outs = malloc(RP_BATCH * sizeof *b.outs);
	b.part = malloc(RP_BATCH * sizeof *b.part);
	pthread_mutex_init(&b.mu, NULL);
	if (b.rows == NULL || b.outs == NULL || b.part == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	b.t0_ns = vigil_mono_ns();
	while (!eof) {
		int64_t batch_day = INT64_MIN;
		b.n = 0;
		b.first_index = index;
		/* fill a batch; it ends at a UTC day boundary when --nightly */
		while (b.n < RP_BATCH) {
			rp_row *row = &b.rows[b.n];
			int64_t day;
			if (have_pending) {
				*row = pending;
				have_pending = false;
			} else {
				rv = rp_source_next(&r->src, row);
				if (rv == VIGIL_ENOTFOUND) {
					rv = VIGIL_OK;
					eof = true;
					break;
				}
				if (rv != VIGIL_OK)
					goto out;
			}
			if (r->first_event == INT64_MIN)
				r->first_event = row->txn.event_time_ms;
			day = row->txn.event_time_ms / VIGIL_MS_PER_DAY;
			if (r->o.nightly && r->day != INT64_MIN && day > r->day) {
				if (b.n > 0) {
					pending = *row;
					have_pending = true;
					break;
				}
				/* after giving up nothing more goes to the servers */
				rv = atomic_load(&b.give_up) ? VIGIL_OK : rp_server_night(r, day, row);
				if (rv != VIGIL_OK)
					goto out;
			}
			if (day > r->day)
				r->day = day;
			else if (day < r->day)
				r->behind++; /* scored as it comes, as vigild scores a late one */
			if (batch_day == INT64_MIN)
				batch_day = day;
			b.n++;
		}
		if (b.n == 0)
			break;
		if (!atomic_load(&b.give_up))
			rv = rp_labels_due(r, b.rows[0].txn.event_time_ms);
		if (rv != VIGIL_OK)
			goto out;
		/* after giving up the rest of the input is read and counted as
		 * not sent: the summary accounts for every row */
		rv = rp_server_batch(r, &b);
		if (rv != VIGIL_OK)
			goto out;
		for (size_t i = 0; i < b.n; i++) {
			r->late += !b.outs[i].failed && b.outs[i].late;
			r->past_horizon += !b.outs[i].failed && b.outs[i].past_horizon;
			rv = rp_observe(r, &b.rows[i], &b.outs[i], NULL);
			if (rv != VIGIL_OK)
				goto out;
			/* refused or unanswered: not acknowledged, no label for it */
			if (b.outs[i].refused || b.outs[i].failed)
				continue;
			rv = rp_label_queue(r, &b.rows[i]);
			if (rv != VIGIL_OK)
				goto out;
		}
		r->rows += b.n;
		index += b.n;
		rp_progress(r, &b.rows[b.n - 1], false);
	}
	/* labels still pending belong to the future of the replay: send them, so
	 * the server's archive ends up with every known label (unless the
	 * servers are gone) */
	if (!atomic_load(&b.give_up))
		rv = rp_labels_due(r, INT64_MAX);
out:
	r->failed = b.errors - b.refused - b.conflicts;
	r->refused = b.refused;
	r->conflicts = b.conflicts;
	r->not_sent = b.not_sent;
	pthread_mutex_destroy(&b.mu);
	free(b.rows);
	free(b.outs);
	free(b.part);
	return rv;
}
