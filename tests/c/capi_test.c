/*
 * The C ABI tested from C99, against the promises of agentburn.h: every function, its error
 * paths, and what the header says about ownership, copying, offline delivery, closing and
 * adoption. Offline only: no server is involved. Ends with the line "N passed, M failed",
 * and exits non-zero on any failure.
 */
#define _XOPEN_SOURCE 700

#include <agentburn/agentburn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "sections.h"
#include "support.h"

/* ---- Result codes, version, memory ------------------------------------------------- */

static void test_library(void) {
  static const int codes[] = {AB_OK,    AB_EINVALID, AB_ENOMEM,   AB_ESTORAGE,
                              AB_EFULL, AB_ELOCKED,  AB_ENETWORK, AB_EHTTP,
                              AB_EAUTH, AB_ETIMEOUT, AB_ECLOSED,  AB_EINTERNAL};
  const int ncodes = (int)(sizeof codes / sizeof codes[0]);
  char version[64];
  int i, j;

  /* Before anything failed on this thread. */
  CHECK(ab_last_error() != NULL && strcmp(ab_last_error(), "") == 0);

  /* The codes are pinned: 0, then -1 to -11 in order. */
  for (i = 0; i < ncodes; ++i) CHECK(codes[i] == -i);
  for (i = 0; i < ncodes; ++i) {
    const char* text = ab_strerror(codes[i]);
    CHECK(text != NULL && text[0] != '\0');
    for (j = 0; j < i; ++j) CHECK(text && strcmp(text, ab_strerror(codes[j])) != 0);
  }
  {
    static const int unknown[] = {1, -12, 42, INT_MIN, INT_MAX};
    for (i = 0; i < (int)(sizeof unknown / sizeof unknown[0]); ++i) {
      const char* text = ab_strerror(unknown[i]);
      CHECK(text != NULL && text[0] != '\0' && strcmp(text, ab_strerror(AB_OK)) != 0);
    }
  }

  snprintf(version, sizeof version, "%d.%d.%d", AB_VERSION_MAJOR, AB_VERSION_MINOR,
           AB_VERSION_PATCH);
  CHECK(ab_version() != NULL && strcmp(ab_version(), version) == 0);
  CHECK(strcmp(ab_version(), AB_VERSION_STRING) == 0);
  CHECK(ab_abi_version() == AB_ABI_VERSION);

  /* The NULL-safe destructors. */
  ab_free(NULL);
  ab_options_free(NULL);
  ab_event_free(NULL);
  CHECK_RC(AB_OK, ab_client_close(NULL, 0));
  CHECK_RC(AB_OK, ab_client_close(NULL, -1));
  CHECK(ab_last_error() != NULL);
}

int main(void) {
  char* tmp;
  /* First: ab_last_error() is "" before anything failed. */
  test_library();
  tmp = temp_dir_new();
  CHECK(tmp != NULL);
  if (!tmp) return check_summary();
  test_options(tmp);
  test_open(tmp);
  test_track_json(tmp);
  test_typed_events(tmp);
  test_agents(tmp);
  test_delivery_offline(tmp);
  test_close_and_adopt(tmp);
  test_shutdown(tmp);
  test_durability(tmp);
  test_disk_cap(tmp);
  test_corrupt_folder(tmp);
  test_log_and_unreachable_server(tmp);
  test_threads(tmp);
  test_shutdown_with_threads(tmp);
  test_budgets(tmp);
  temp_dir_remove(tmp);
  return check_summary();
}
