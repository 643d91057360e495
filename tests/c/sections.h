/*
 * The test sections, one group per file; each takes the run's temporary folder and works in
 * a sub-folder of its own.
 */
#ifndef AGENTBURN_TEST_SECTIONS_H
#define AGENTBURN_TEST_SECTIONS_H

/* options.c: the setters, and opening a client. */
void test_options(const char* tmp);
void test_open(const char* tmp);
/* events.c: events as JSON and as typed values. */
void test_track_json(const char* tmp);
void test_typed_events(const char* tmp);
/* client.c: agents, flush and stats offline, close and adoption, shutdown, durability, the
 * disk cap. */
void test_agents(const char* tmp);
void test_delivery_offline(const char* tmp);
void test_close_and_adopt(const char* tmp);
void test_shutdown(const char* tmp);
void test_durability(const char* tmp);
void test_disk_cap(const char* tmp);
/* failures.c: a damaged buffer folder, an unreachable server and the log, threads. */
void test_corrupt_folder(const char* tmp);
void test_log_and_unreachable_server(const char* tmp);
void test_threads(const char* tmp);
void test_shutdown_with_threads(const char* tmp);
/* budgets.c: budgets, reservations and alerts. */
void test_budgets(const char* tmp);

#endif
