/* When things go wrong: a damaged buffer folder, a server that cannot be reached (and what
 * the log hears of it), and many threads at once. */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sections.h"
#include "support.h"

/* ---- Logging and a buffer folder that cannot be read --------------------------------- */

/* What a log callback heard. `magic` shows that user_data came back as given. */
#define LOG_RECORD_MAGIC 0x10c5eedu

struct log_record {
  unsigned magic;
  pthread_mutex_t mutex;
  int count;
  int lowest_level;
  int saw_secret;
  int null_message;
  const char* secret;
};

static volatile int g_log_bad_user_data;

/* May run on the sender's thread: everything under the mutex. */
static void record_log(int level, const char* message, void* user_data) {
  struct log_record* r = user_data;
  if (!r || r->magic != LOG_RECORD_MAGIC) {
    g_log_bad_user_data = 1;
    return;
  }
  pthread_mutex_lock(&r->mutex);
  if (r->count == 0 || level < r->lowest_level) r->lowest_level = level;
  ++r->count;
  if (!message) r->null_message = 1;
  if (message && r->secret && strstr(message, r->secret)) r->saw_secret = 1;
  pthread_mutex_unlock(&r->mutex);
}

static void log_record_init(struct log_record* r, const char* secret) {
  memset(r, 0, sizeof *r);
  r->magic = LOG_RECORD_MAGIC;
  pthread_mutex_init(&r->mutex, NULL);
  r->secret = secret;
}

static int log_count(struct log_record* r) {
  int n;
  pthread_mutex_lock(&r->mutex);
  n = r->count;
  pthread_mutex_unlock(&r->mutex);
  return n;
}

/* A client left events in a folder; its database is then damaged. */
void test_corrupt_folder(const char* tmp) {
  char* root = path_join(tmp, "corrupt");
  ab_client* c = open_at(root);
  char *folder = NULL, *current = NULL, *prefix = NULL;
  struct log_record log;
  ab_options* o;

  log_record_init(&log, NULL);
  if (!c) goto done;
  CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  folder = find_folder(root, "");
  CHECK(folder != NULL);
  if (!folder) goto done;
  current = path_join(folder, "CURRENT");
  CHECK(write_file(current, "garbage\n"));
  prefix = concat3("corrupt-", strrchr(folder, '/') + 1, "-");

  /* Default: the open fails, and the folder is left as it was. */
  o = options_at(root);
  c = NULL;
  CHECK_RC(AB_ESTORAGE, ab_client_open(&c, o));
  CHECK(count_folders(root, "corrupt-") == 0);
  CHECK(count_folders(root, strrchr(folder, '/') + 1) == 1);

  /* set_aside_corrupt: renamed corrupt-<name>-<time>, a fresh start, and a log message. */
  CHECK_RC(AB_OK, ab_options_set_set_aside_corrupt(o, 1));
  CHECK_RC(AB_OK, ab_options_set_log(o, record_log, AB_LOG_WARNING, &log));
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  ab_options_free(o);
  CHECK(count_folders(root, prefix) == 1);
  CHECK(c && stat_of(c, "pending") == 0);
  CHECK_RC(AB_OK, ab_client_close(c, 0));
  CHECK(log_count(&log) > 0 && log.lowest_level >= AB_LOG_WARNING && !log.null_message);
  CHECK(!g_log_bad_user_data);
done:
  pthread_mutex_destroy(&log.mutex);
  free(prefix);
  free(current);
  free(folder);
  free(root);
}

/* A loopback port that refuses connections: bound, never listening. Returns the socket
 * (keep it open so no one else takes the port) and writes the port. */
static int refusing_port(int* port) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      getsockname(fd, (struct sockaddr*)&addr, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

/* Waits (at most 20 s) until the stats show a sender error; returns the stats JSON then,
 * or NULL. ab_client_flush is the wait: it returns on the sender's progress. */
static char* wait_for_sender_error(ab_client* c) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    char* stats = NULL;
    const char* v;
    if (ab_client_stats_json(&stats, c) != AB_OK) return NULL;
    v = json_member(stats, "last_error");
    if (v && *v == '"' && v[1] != '"') return stats;
    ab_free(stats);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 20) return NULL;
    ab_client_flush(c, 100);
  }
}

/* A server that cannot be reached: registration falls back to a provisional id, delivery
 * fails into last_error, the log hears about it, and the API key shows nowhere. With
 * logging turned off again, nothing arrives. */
void test_log_and_unreachable_server(const char* tmp) {
  static const char* secret = "sk-never-log-me-0123456789";
  char* root = path_join(tmp, "unreachable");
  char* quiet_root = path_join(tmp, "unreachable-quiet");
  char endpoint[64];
  struct log_record log;
  ab_options* o = options_at(root);
  ab_client* c = NULL;
  char *id = NULL, *stats = NULL;
  int port = 0;
  int fd = refusing_port(&port);

  log_record_init(&log, secret);
  CHECK(fd >= 0);
  if (fd < 0 || !o) goto done;
  snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, endpoint));
  CHECK_RC(AB_OK, ab_options_set_api_key(o, secret));
  CHECK_RC(AB_OK, ab_options_set_connect_timeout_ms(o, 2000));
  CHECK_RC(AB_OK, ab_options_set_request_timeout_ms(o, 2000));
  CHECK_RC(AB_OK, ab_options_set_log(o, record_log, AB_LOG_DEBUG, &log));
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  if (c) {
    CHECK_RC(AB_OK, register_agent(&id, c, "{\"name\":\"Unreachable Agent\"}"));
    CHECK(id != NULL && strncmp(id, "ab-local-", 9) == 0);
    CHECK_RC(AB_OK, track(c, EVENT("")));
    stats = wait_for_sender_error(c);
    CHECK(stats != NULL);
    CHECK(stats == NULL || strstr(stats, secret) == NULL);
    CHECK(stat_of(c, "pending") == 1 && stat_of(c, "delivered") == 0);
    CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
    CHECK(strstr(ab_last_error(), secret) == NULL);
  }
  CHECK(log_count(&log) > 0 && !log.saw_secret && !log.null_message);
  CHECK(!g_log_bad_user_data);

  /* Logging turned off again. */
  pthread_mutex_lock(&log.mutex);
  log.count = 0;
  pthread_mutex_unlock(&log.mutex);
  CHECK_RC(AB_OK, ab_options_set_log(o, NULL, AB_LOG_DEBUG, NULL));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, quiet_root));
  c = NULL;
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  if (c) {
    ab_free(id);
    id = NULL;
    CHECK_RC(AB_OK, register_agent(&id, c, "{\"name\":\"Quiet Agent\"}"));
    CHECK(id != NULL && strncmp(id, "ab-local-", 9) == 0);
    CHECK_RC(AB_OK, ab_client_close(c, 0));
  }
  CHECK(log_count(&log) == 0);
done:
  if (fd >= 0) close(fd);
  ab_options_free(o);
  ab_free(stats);
  ab_free(id);
  pthread_mutex_destroy(&log.mutex);
  free(quiet_root);
  free(root);
}

/* ---- Threads ------------------------------------------------------------------------ */

enum { kThreads = 4, kEventsPerThread = 50 };

struct worker {
  ab_client* c;
  int failures;
  int own_error_seen;
};

static void* track_from_thread(void* arg) {
  struct worker* w = arg;
  int i;
  for (i = 0; i < kEventsPerThread; ++i) {
    if (track(w->c, EVENT(",\"workflowId\":\"threads\"")) != AB_OK) ++w->failures;
  }
  /* This thread's error is its own. */
  if (track(w->c, "{\"agentId\":\"a\",\"operation\":\"llm_call\",\"costUsd\":1}") == AB_EINVALID &&
      strstr(ab_last_error(), "provider") != NULL) {
    w->own_error_seen = 1;
  }
  return NULL;
}

void test_threads(const char* tmp) {
  char* root = path_join(tmp, "threads");
  ab_client* c = open_at(root);
  pthread_t threads[kThreads];
  struct worker workers[kThreads];
  int i, started = 0;

  if (!c) goto done;
  /* An error on this thread, then others fail differently on theirs. */
  CHECK_INVALID("costUsd", track(c, EVENT(",\"costUsd\":2")));
  for (i = 0; i < kThreads; ++i) {
    workers[i].c = c;
    workers[i].failures = 0;
    workers[i].own_error_seen = 0;
    if (pthread_create(&threads[started], NULL, track_from_thread, &workers[i]) != 0) break;
    ++started;
  }
  for (i = 0; i < started; ++i) pthread_join(threads[i], NULL);
  CHECK(started == kThreads);
  CHECK(strstr(ab_last_error(), "costUsd") != NULL && strstr(ab_last_error(), "provider") == NULL);
  for (i = 0; i < started; ++i) CHECK(workers[i].failures == 0 && workers[i].own_error_seen);
  CHECK(stat_of(c, "pending") == (uint64_t)started * kEventsPerThread);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
done:
  free(root);
}

/* ab_client_shutdown while other threads track: each thread's calls succeed until one returns
 * AB_ECLOSED, never anything else; every event that was accepted is on disk for the next
 * client; two shutdowns at once close once. */
enum { kShutdownThreads = 4, kShutdownAfter = 200, kShutdownCap = 1000000 };

struct racer {
  ab_client* c;
  pthread_mutex_t* mutex;
  pthread_cond_t* progress;
  int* total;   /* events accepted by every racer, under mutex */
  int accepted; /* this racer's */
  int last_rc;  /* the code that ended its loop */
};

static void* track_until_closed(void* arg) {
  struct racer* r = arg;
  int i, rc = AB_OK;
  for (i = 0; i < kShutdownCap && rc == AB_OK; ++i) {
    rc = track(r->c, EVENT(",\"taskId\":\"race\""));
    if (rc != AB_OK) break;
    ++r->accepted;
    pthread_mutex_lock(r->mutex);
    ++*r->total;
    pthread_cond_signal(r->progress);
    pthread_mutex_unlock(r->mutex);
  }
  r->last_rc = rc;
  return NULL;
}

struct closer {
  ab_client* c;
  int rc;
};

static void* shut_down(void* arg) {
  struct closer* k = arg;
  k->rc = ab_client_shutdown(k->c, 0);
  return NULL;
}

void test_shutdown_with_threads(const char* tmp) {
  char* root = path_join(tmp, "shutdown-threads");
  ab_client* c = open_at(root);
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t progress = PTHREAD_COND_INITIALIZER;
  pthread_t threads[kShutdownThreads], closers[2];
  struct racer racers[kShutdownThreads];
  struct closer closing[2];
  struct timespec deadline;
  int i, started = 0, closers_started = 0, total = 0, accepted = 0, timed_out = 0;

  if (!c) goto done;
  for (i = 0; i < kShutdownThreads; ++i) {
    racers[i].c = c;
    racers[i].mutex = &mutex;
    racers[i].progress = &progress;
    racers[i].total = &total;
    racers[i].accepted = 0;
    racers[i].last_rc = AB_OK;
    if (pthread_create(&threads[started], NULL, track_until_closed, &racers[i]) != 0) break;
    ++started;
  }
  CHECK(started == kShutdownThreads);
  /* Shut down once the racers are well under way (at most 60 s). */
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 60;
  pthread_mutex_lock(&mutex);
  while (total < kShutdownAfter && !timed_out) {
    timed_out = pthread_cond_timedwait(&progress, &mutex, &deadline) != 0 && total < kShutdownAfter;
  }
  pthread_mutex_unlock(&mutex);
  CHECK(!timed_out);
  for (i = 0; i < 2; ++i) {
    closing[i].c = c;
    closing[i].rc = AB_OK;
    if (pthread_create(&closers[closers_started], NULL, shut_down, &closing[i]) != 0) break;
    ++closers_started;
  }
  CHECK(closers_started == 2);
  for (i = 0; i < closers_started; ++i) pthread_join(closers[i], NULL);
  for (i = 0; i < started; ++i) pthread_join(threads[i], NULL);
  /* One shutdown closed (offline with events pending: AB_ETIMEOUT), the other found it
   * closed. */
  CHECK((closing[0].rc == AB_ETIMEOUT && closing[1].rc == AB_ECLOSED) ||
        (closing[0].rc == AB_ECLOSED && closing[1].rc == AB_ETIMEOUT));
  for (i = 0; i < started; ++i) {
    CHECK(racers[i].last_rc == AB_ECLOSED);
    accepted += racers[i].accepted;
  }
  CHECK(accepted == total && total >= kShutdownAfter);
  CHECK_RC(AB_ECLOSED, track(c, EVENT("")));
  CHECK_RC(AB_OK, ab_client_close(c, 0));

  c = open_at(root);
  if (c) {
    CHECK(stat_of(c, "pending") == (uint64_t)accepted);
    CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  }
done:
  pthread_mutex_destroy(&mutex);
  pthread_cond_destroy(&progress);
  free(root);
}
