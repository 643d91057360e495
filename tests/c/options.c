/* The options' setters, and opening a client. */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sections.h"
#include "support.h"

/* ---- Options ------------------------------------------------------------------------ */

/* Both ends of an integer option's range are accepted, one past either end refused with an
 * error that names the option. */
#define CHECK_RANGE(setter, o, name, lo, hi)  \
  do {                                        \
    CHECK_INVALID(name, setter(o, (lo)-1));   \
    CHECK_INVALID(name, setter(o, (hi) + 1)); \
    CHECK_RC(AB_OK, setter(o, lo));           \
    CHECK_RC(AB_OK, setter(o, hi));           \
  } while (0)

static void noop_log(int level, const char* message, void* user_data) {
  (void)level;
  (void)message;
  (void)user_data;
}

static void test_option_null_handle(void) {
  CHECK_INVALID(NULL, ab_options_new(NULL));
  CHECK_INVALID(NULL, ab_options_set_endpoint(NULL, "https://agentburn.example.com"));
  CHECK_INVALID(NULL, ab_options_set_api_key(NULL, "key"));
  CHECK_INVALID(NULL, ab_options_set_buffer_root(NULL, "/tmp"));
  CHECK_INVALID(NULL, ab_options_set_durability(NULL, AB_DURABILITY_PROCESS));
  CHECK_INVALID(NULL, ab_options_set_buffered_flush_ms(NULL, 5));
  CHECK_INVALID(NULL, ab_options_set_disk_cap(NULL, 0));
  CHECK_INVALID(NULL, ab_options_set_full_policy(NULL, AB_FULL_REJECT));
  CHECK_INVALID(NULL, ab_options_set_set_aside_corrupt(NULL, 1));
  CHECK_INVALID(NULL, ab_options_set_batch_max_events(NULL, 10));
  CHECK_INVALID(NULL, ab_options_set_batch_max_bytes(NULL, 4096));
  CHECK_INVALID(NULL, ab_options_set_flush_interval_ms(NULL, 10));
  CHECK_INVALID(NULL, ab_options_set_max_batches_in_flight(NULL, 2));
  CHECK_INVALID(NULL, ab_options_set_connect_timeout_ms(NULL, 100));
  CHECK_INVALID(NULL, ab_options_set_request_timeout_ms(NULL, 100));
  CHECK_INVALID(NULL, ab_options_set_register_timeout_ms(NULL, 100));
  CHECK_INVALID(NULL, ab_options_set_retry_initial_ms(NULL, 100));
  CHECK_INVALID(NULL, ab_options_set_retry_max_ms(NULL, 100000));
  CHECK_INVALID(NULL, ab_options_set_split_after_failures(NULL, 2));
  CHECK_INVALID(NULL, ab_options_set_proxy(NULL, "http://proxy.example:3128"));
  CHECK_INVALID(NULL, ab_options_set_ca_bundle(NULL, "/etc/ssl/certs/ca-certificates.crt"));
  CHECK_INVALID(NULL, ab_options_set_gzip(NULL, 1));
  CHECK_INVALID(NULL, ab_options_set_allow_insecure_http(NULL, 1));
  CHECK_INVALID(NULL, ab_options_set_seed_fields_only(NULL, 1));
  CHECK_INVALID(NULL, ab_options_set_close_timeout_ms(NULL, 100));
  CHECK_INVALID(NULL, ab_options_set_log(NULL, noop_log, AB_LOG_INFO, NULL));
}

static void test_option_numbers(ab_options* o) {
  CHECK_RANGE(ab_options_set_buffered_flush_ms, o, "buffered_flush_ms", 1, 1000);
  CHECK_RANGE(ab_options_set_batch_max_events, o, "batch_max_events", 1, 1000);
  CHECK_RANGE(ab_options_set_batch_max_bytes, o, "batch_max_bytes", (size_t)1024, (size_t)64 << 20);
  CHECK_RANGE(ab_options_set_flush_interval_ms, o, "flush_interval_ms", 0, 3600000);
  CHECK_RANGE(ab_options_set_max_batches_in_flight, o, "max_batches_in_flight", 1, 16);
  CHECK_RANGE(ab_options_set_connect_timeout_ms, o, "connect_timeout_ms", 1, 600000);
  CHECK_RANGE(ab_options_set_request_timeout_ms, o, "request_timeout_ms", 1, 3600000);
  CHECK_RANGE(ab_options_set_register_timeout_ms, o, "register_timeout_ms", 1, 600000);
  CHECK_RANGE(ab_options_set_split_after_failures, o, "split_after_failures", 1, 1000);
  CHECK_RANGE(ab_options_set_close_timeout_ms, o, "close_timeout_ms", 0, 3600000);

  /* A setter checks its own value; how options combine is checked by ab_client_open, so
   * the order of the setters never matters: retry_max_ms below retry_initial_ms is taken
   * by the setter and refused by the open. */
  CHECK_INVALID("retry_initial_ms", ab_options_set_retry_initial_ms(o, -1));
  CHECK_RC(AB_OK, ab_options_set_retry_initial_ms(o, 500));
  CHECK_RC(AB_OK, ab_options_set_retry_max_ms(o, 499));
  {
    ab_client* c = NULL;
    CHECK_INVALID("retry_max_ms", ab_client_open(&c, o));
    CHECK(c == NULL);
  }
  CHECK_RC(AB_OK, ab_options_set_retry_max_ms(o, 500));
  CHECK_RC(AB_OK, ab_options_set_retry_max_ms(o, 60000));

  /* No value of the cap is out of range: 0 is "none". */
  CHECK_RC(AB_OK, ab_options_set_disk_cap(o, 0));
  CHECK_RC(AB_OK, ab_options_set_disk_cap(o, UINT64_MAX));
  CHECK_RC(AB_OK, ab_options_set_disk_cap(o, (uint64_t)1 << 30));

  CHECK_INVALID("durability", ab_options_set_durability(o, AB_DURABILITY_BUFFERED - 1));
  CHECK_INVALID("durability", ab_options_set_durability(o, AB_DURABILITY_SYSTEM + 1));
  CHECK_RC(AB_OK, ab_options_set_durability(o, AB_DURABILITY_BUFFERED));
  CHECK_RC(AB_OK, ab_options_set_durability(o, AB_DURABILITY_SYSTEM));
  CHECK_RC(AB_OK, ab_options_set_durability(o, AB_DURABILITY_PROCESS));

  CHECK_INVALID("full_policy", ab_options_set_full_policy(o, AB_FULL_REJECT - 1));
  CHECK_INVALID("full_policy", ab_options_set_full_policy(o, AB_FULL_DROP_OLDEST + 1));
  CHECK_RC(AB_OK, ab_options_set_full_policy(o, AB_FULL_DROP_OLDEST));
  CHECK_RC(AB_OK, ab_options_set_full_policy(o, AB_FULL_REJECT));

  CHECK_INVALID("level", ab_options_set_log(o, noop_log, AB_LOG_DEBUG - 1, NULL));
  CHECK_INVALID("level", ab_options_set_log(o, noop_log, AB_LOG_ERROR + 1, NULL));
  CHECK_RC(AB_OK, ab_options_set_log(o, noop_log, AB_LOG_DEBUG, NULL));
  CHECK_RC(AB_OK, ab_options_set_log(o, noop_log, AB_LOG_ERROR, o));
  CHECK_RC(AB_OK, ab_options_set_log(o, NULL, AB_LOG_INFO, NULL));

  CHECK_RC(AB_OK, ab_options_set_set_aside_corrupt(o, 1));
  CHECK_RC(AB_OK, ab_options_set_set_aside_corrupt(o, 0));
  CHECK_RC(AB_OK, ab_options_set_gzip(o, 1));
  CHECK_RC(AB_OK, ab_options_set_gzip(o, 0));
  CHECK_RC(AB_OK, ab_options_set_seed_fields_only(o, 1));
  CHECK_RC(AB_OK, ab_options_set_seed_fields_only(o, 0));
}

static void test_option_strings(ab_options* o) {
  static const char* const bad_endpoints[] = {
      "agentburn.example.com", "ftp://agentburn.example.com", "https://",
      "https://agent burn.example.com"};
  /* Well formed, but plain http:// to a host that is not loopback: the setter takes them
   * (allow_insecure_http may come later) and ab_client_open refuses them. */
  static const char* const insecure_endpoints[] = {
      "http://agentburn.example.com", "http://10.1.2.3:3000", "http://192.168.0.10",
      /* Names, not loopback addresses, however they begin. */
      "http://127.0.0.1.nip.example", "http://127.example.com"};
  static const char* const good_endpoints[] = {
      "https://agentburn.example.com", "https://agentburn.example.com/", "http://127.0.0.1:3000",
      "http://localhost:3000", "http://[::1]:3000"};
  const char* secret = "sk-do-not-print-4242";
  size_t i;

  for (i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; ++i) {
    check_code(ab_options_set_endpoint(o, bad_endpoints[i]), AB_EINVALID, "endpoint",
               bad_endpoints[i], __FILE__, __LINE__);
  }
  for (i = 0; i < sizeof insecure_endpoints / sizeof insecure_endpoints[0]; ++i) {
    ab_client* c = NULL;
    check_code(ab_options_set_endpoint(o, insecure_endpoints[i]), AB_OK, NULL,
               insecure_endpoints[i], __FILE__, __LINE__);
    check_code(ab_client_open(&c, o), AB_EINVALID, "endpoint", insecure_endpoints[i], __FILE__,
               __LINE__);
    if (c) ab_client_close(c, 0);
  }
  for (i = 0; i < sizeof good_endpoints / sizeof good_endpoints[0]; ++i) {
    check_code(ab_options_set_endpoint(o, good_endpoints[i]), AB_OK, NULL, good_endpoints[i],
               __FILE__, __LINE__);
  }
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, NULL));
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, ""));
  /* allow_insecure_http opens plain http:// to any host. */
  CHECK_RC(AB_OK, ab_options_set_allow_insecure_http(o, 1));
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, "http://agentburn.example.com"));
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, NULL));
  CHECK_RC(AB_OK, ab_options_set_allow_insecure_http(o, 0));

  /* The key never shows in an error message. */
  CHECK_RC(AB_OK, ab_options_set_api_key(o, secret));
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, "http://agentburn.example.com"));
  {
    ab_client* c = NULL;
    CHECK_INVALID("endpoint", ab_client_open(&c, o));
    CHECK(strstr(ab_last_error(), secret) == NULL);
  }
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, NULL));
  CHECK_RC(AB_OK, ab_options_set_api_key(o, ""));
  CHECK_RC(AB_OK, ab_options_set_api_key(o, NULL));
  /* A key that would end its header line and start another is refused, and not shown. */
  CHECK_INVALID("api_key", ab_options_set_api_key(o, "sk-secret\r\nX-Injected: 1"));
  CHECK(strstr(ab_last_error(), "secret") == NULL);

  CHECK_INVALID("buffer_root", ab_options_set_buffer_root(o, "relative/buffer"));
  CHECK_INVALID("buffer_root", ab_options_set_buffer_root(o, "./buffer"));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, NULL));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, ""));

  CHECK_RC(AB_OK, ab_options_set_proxy(o, "http://proxy.example:3128"));
  CHECK_RC(AB_OK, ab_options_set_proxy(o, NULL));
  CHECK_RC(AB_OK, ab_options_set_ca_bundle(o, "/etc/ssl/certs/ca-certificates.crt"));
  CHECK_RC(AB_OK, ab_options_set_ca_bundle(o, NULL));
}

/* allow_insecure_http(0) is a value in range, so the setter takes it, whatever endpoint is
 * set; the plain http:// endpoint it had allowed is then a bad option for ab_client_open. Above
 * all, a refused attempt to turn it off must not leave it on. */
static void test_insecure_http_off(const char* root) {
  ab_options* o = options_at(root);
  ab_client* c = NULL;
  CHECK_RC(AB_OK, ab_options_set_allow_insecure_http(o, 1));
  CHECK_RC(AB_OK, ab_options_set_endpoint(o, "http://agentburn.example.com"));
  CHECK_RC(AB_OK, ab_options_set_allow_insecure_http(o, 0));
  CHECK_INVALID("endpoint", ab_client_open(&c, o));
  if (c) ab_client_close(c, 0);
  ab_options_free(o);
}

void test_options(const char* tmp) {
  ab_options* o = NULL;
  char* root = path_join(tmp, "options");
  char* other = path_join(tmp, "options-other");
  ab_client* c = NULL;

  test_option_null_handle();
  CHECK_RC(AB_OK, ab_options_new(&o));
  CHECK(o != NULL);
  if (!o) goto done;
  test_option_numbers(o);
  test_option_strings(o);

  /* A refused value leaves the option as it was. */
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, root));
  CHECK_INVALID("buffer_root", ab_options_set_buffer_root(o, "relative/buffer"));
  /* Every value the setters accepted above, together, opens a client. */
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  CHECK(count_folders(root, "") == 1);
  CHECK_RC(AB_OK, ab_client_close(c, 0));
  CHECK(count_folders(root, "") == 0);

  /* The options are copied: freeing them, or changing them, leaves an open client alone. */
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, other));
  ab_options_free(o);
  CHECK_RC(AB_OK, track(c, EVENT("")));
  CHECK(count_folders(root, "") == 1);
  CHECK(count_folders(other, "") <= 0);
  CHECK(stat_of(c, "pending") == 1);
  CHECK_RC(AB_ETIMEOUT, ab_client_close(c, 0));
  test_insecure_http_off(other);
done:
  free(root);
  free(other);
}

/* ---- Opening ------------------------------------------------------------------------ */

void test_open(const char* tmp) {
  char* xdg = path_join(tmp, "xdg");
  char* default_root = path_join(xdg, "agentburn/buffer");
  char* file = path_join(tmp, "a-file");
  char* under_file = path_join(file, "buffer");
  char* copied = path_join(tmp, "copied");
  char root_text[512];
  ab_client* c = NULL;
  ab_options* o = NULL;

  CHECK_INVALID(NULL, ab_client_open(NULL, NULL));
  CHECK_RC(AB_OK, ab_options_new(&o));
  CHECK_INVALID(NULL, ab_client_open(NULL, o));

  /* opts NULL: every default, so the buffer root is under $XDG_DATA_HOME. */
  CHECK(setenv("XDG_DATA_HOME", xdg, 1) == 0);
  CHECK_RC(AB_OK, ab_client_open(&c, NULL));
  CHECK(c != NULL);
  CHECK(count_folders(default_root, "") == 1);
  CHECK(stat_of(c, "pending") == 0);
  CHECK_RC(AB_OK, ab_client_close(c, 0));
  CHECK(count_folders(default_root, "") == 0); /* nothing was left, so nothing stays */

  /* A buffer root that cannot be a folder. */
  CHECK(write_file(file, "not a folder\n"));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, file));
  CHECK_RC(AB_ESTORAGE, ab_client_open(&c, o));
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, under_file));
  CHECK_RC(AB_ESTORAGE, ab_client_open(&c, o));

  /* The path is copied when set: the caller may reuse its memory (were it kept, the open
   * would see a relative path). */
  snprintf(root_text, sizeof root_text, "%s", copied);
  CHECK_RC(AB_OK, ab_options_set_buffer_root(o, root_text));
  strcpy(root_text, "relative/elsewhere");
  c = NULL;
  CHECK_RC(AB_OK, ab_client_open(&c, o));
  CHECK(count_folders(copied, "") == 1);
  CHECK_RC(AB_OK, ab_client_close(c, 0));
  ab_options_free(o);

  free(copied);
  free(xdg);
  free(default_root);
  free(file);
  free(under_file);
}
