// Hostile inputs through every entry point of the library that takes the caller's data: the
// C++ API (track_json, track, register_agent_json, register_agent) and the C ABI
// (ab_client_track_json, ab_client_track_json_key, the ab_event_* setters with
// ab_client_track, ab_client_register_agent_json).
//
// Each input must be refused with a clear error (kInvalid / AB_EINVALID, a UTF-8 message of
// bounded size that names the field when there is one), and the client must stay usable: a
// valid event tracked after each refusal is accepted, and the pending count shows that
// nothing accepted before was lost.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agentburn/agentburn.h"
#include "agentburn/agentburn.hpp"
#include "hostile.hpp"
#include "support.hpp"

using agentburn::Client;
using agentburn::Status;
using hostile::JsonRow;

namespace {

// Error texts quote the caller's input only in part: a refusal is a few hundred bytes.
constexpr std::size_t kMaxMessageBytes = 2048;

void check_message(const std::string& message, const std::string& field) {
  INFO("message: ", message.substr(0, 300));
  CHECK(!message.empty());
  CHECK(hostile::valid_utf8(message));
  CHECK(message.size() <= kMaxMessageBytes);
  if (field.empty()) {
    CHECK(hostile::names_no_event_field(message));
  } else {
    CHECK(hostile::names_field(message, field));
  }
}

// Refusals whose whole message is pinned: each says what was wrong and names the field that
// holds it, through the C++ API and the C ABI alike.
struct MessageRow {
  std::string name;
  std::string text;
  std::string message;
};

std::vector<MessageRow> message_rows() {
  std::vector<MessageRow> rows;
  auto size = [](const std::string& text) {
    return "the event is " + std::to_string(text.size()) + " bytes; the limit is 65536";
  };
  // Over the event's size limit because of one field: that field's own limit is named.
  std::string big_metadata =
      hostile::event_with("metadata", "{\"pad\":\"" + std::string(1000000, 'x') + "\"}");
  rows.push_back({"metadata of 1 MB", big_metadata,
                  "metadata: is 1000010 bytes encoded; the limit is 16384 (" + size(big_metadata) +
                      ")"});
  std::string big_model =
      hostile::event_with("model", "\"" + std::string(100000, 'm') + "\"");
  rows.push_back({"model of 100 KB", big_model,
                  "model: is 100000 bytes; the limit is 256 (" + size(big_model) + ")"});
  // NaN and the infinities, as Python's json.dumps writes them: the field that holds one.
  rows.push_back({"costUsd NaN", hostile::event_with("costUsd", "NaN"),
                  "costUsd: must be a finite number, got NaN"});
  rows.push_back({"costUsd Infinity", hostile::event_with("costUsd", " Infinity "),
                  "costUsd: must be a finite number, got Infinity"});
  rows.push_back({"outputTokens -Infinity", hostile::event_with("outputTokens", "-Infinity"),
                  "outputTokens: must be a finite number, got -Infinity"});
  rows.push_back({"metadata value NaN", hostile::event_with("metadata", "{\"v\":NaN}"),
                  "metadata: \"v\" must be a finite number, got NaN"});
  rows.push_back({"the text NaN", "NaN",
                  "not valid JSON: NaN and Infinity are not JSON numbers, got NaN"});
  // A field name in snake_case: the camelCase one is suggested.
  for (const auto& [given, known] :
       {std::pair<std::string, std::string>{"input_tokens", "inputTokens"},
        {"input_token", "inputTokens"}, {"cost_usd", "costUsd"}, {"task_id", "taskId"}}) {
    rows.push_back({"unknown field " + given, hostile::event_with(given, "1"),
                    given + ": unknown field \"" + given + "\"; did you mean \"" + known + "\"?"});
  }
  std::string spaces = std::string(70000, ' ') + hostile::kValidEvent;
  rows.push_back({"a valid event after 70,000 spaces", spaces, size(spaces)});
  return rows;
}

// --- The C++ API ---------------------------------------------------------------------------

struct CppClient {
  testing::TempDir dir;
  std::optional<Client> client;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;

  CppClient() {
    agentburn::Options options;
    options.buffer_root = dir.path();
    auto opened = Client::open(options);
    REQUIRE_MESSAGE(opened.ok(), opened.status().to_string());
    client.emplace(std::move(opened.value()));
  }

  // A valid event is accepted, and everything accepted so far is pending.
  void still_usable() {
    agentburn::Event e = hostile::valid_typed();
    e.idempotency_key = "valid-" + std::to_string(accepted);
    std::string key;
    Status s = client->track(e, &key);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    CHECK(key == *e.idempotency_key);
    ++accepted;
    agentburn::Stats st = client->stats();
    CHECK(st.pending == accepted);
    CHECK(st.rejected == refused);
  }

  void refused_json(const JsonRow& row) {
    INFO("row: ", row.name);
    std::string key = "untouched";
    Status s = client->track_json(row.text, &key);
    CHECK(s.code() == Status::Code::kInvalid);
    check_message(s.message(), row.field);
    CHECK(key == "untouched");
    ++refused;
    still_usable();
  }
};

TEST_SUITE_BEGIN("hostile.cpp");

TEST_CASE("track_json refuses every hostile event, naming the field; the client stays usable") {
  CppClient c;
  c.still_usable();
  for (const auto& row : hostile::event_rows()) c.refused_json(row);
  CHECK(c.client->close(std::chrono::milliseconds(0)).code() == Status::Code::kTimeout);
}

TEST_CASE("track_json's refusals say what was wrong, naming the field") {
  CppClient c;
  for (const auto& row : message_rows()) {
    INFO("row: ", row.name);
    Status s = c.client->track_json(row.text);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK(s.message() == row.message);
    ++c.refused;
    c.still_usable();
  }
}

TEST_CASE("track_json accepts the valid inputs that look hostile") {
  CppClient c;
  for (const auto& row : hostile::accepted_rows()) {
    INFO("row: ", row.name);
    Status s = c.client->track_json(row.text);
    CHECK_MESSAGE(s.ok(), s.to_string());
    if (s.ok()) ++c.accepted;
    c.still_usable();
  }
}

TEST_CASE("track refuses every hostile typed event, naming the field") {
  CppClient c;
  c.still_usable();
  for (const auto& row : hostile::typed_rows()) {
    INFO("row: ", row.name);
    std::string key = "untouched";
    Status s = c.client->track(row.event, &key);
    CHECK(s.code() == Status::Code::kInvalid);
    check_message(s.message(), row.field);
    CHECK(key == "untouched");
    ++c.refused;
    c.still_usable();
  }
}

TEST_CASE("register_agent_json and register_agent refuse every hostile agent, naming the field") {
  CppClient c;
  c.still_usable();
  for (const auto& row : hostile::agent_rows()) {
    INFO("row: ", row.name);
    auto id = c.client->register_agent_json(row.text);
    CHECK_FALSE(id.ok());
    CHECK(id.status().code() == Status::Code::kInvalid);
    check_message(id.status().message(), row.field);
    c.still_usable();
  }
  agentburn::Agent a;
  a.name = std::string("a\0b", 3);
  auto id = c.client->register_agent(a);
  CHECK(id.status().code() == Status::Code::kInvalid);
  check_message(id.status().message(), "name");
  a.name = "ok";
  a.tags.assign(65, "t");
  CHECK(c.client->register_agent(a).status().code() == Status::Code::kInvalid);
  a.tags = {std::string(1 << 20, 't')};
  CHECK(c.client->register_agent(a).status().code() == Status::Code::kInvalid);
  a.tags.clear();
  a.description = std::string(10 << 20, 'd');
  CHECK(c.client->register_agent(a).status().code() == Status::Code::kInvalid);
  a.description = "\xff";
  CHECK(c.client->register_agent(a).status().code() == Status::Code::kInvalid);
  a.description.reset();
  auto ok = c.client->register_agent(a);
  REQUIRE_MESSAGE(ok.ok(), ok.status().to_string());
  c.still_usable();
}

TEST_SUITE_END();

// --- The C ABI -----------------------------------------------------------------------------

struct CClient {
  testing::TempDir dir;
  ab_client* client = nullptr;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;

  CClient() {
    ab_options* opts = nullptr;
    REQUIRE(ab_options_new(&opts) == AB_OK);
    REQUIRE(ab_options_set_buffer_root(opts, dir.path().c_str()) == AB_OK);
    int rc = ab_client_open(&client, opts);
    ab_options_free(opts);
    REQUIRE_MESSAGE(rc == AB_OK, ab_last_error());
  }
  ~CClient() { ab_client_close(client, 0); }
  CClient(const CClient&) = delete;
  CClient& operator=(const CClient&) = delete;

  std::uint64_t stat(const char* name) {
    char* text = nullptr;
    REQUIRE(ab_client_stats_json(&text, client) == AB_OK);
    auto stats = nlohmann::json::parse(text);
    ab_free(text);
    return stats.at(name).get<std::uint64_t>();
  }

  void still_usable() {
    std::string event = hostile::kValidEvent;
    std::string key_given = "c-valid-" + std::to_string(accepted);
    event.insert(event.size() - 1, ",\"idempotency_key\":\"" + key_given + "\"");
    char key[AB_KEY_SIZE] = {0};
    int rc = ab_client_track_json_key(key, client, event.data(), event.size());
    REQUIRE_MESSAGE(rc == AB_OK, ab_last_error());
    CHECK(key_given == key);
    ++accepted;
    CHECK(stat("pending") == accepted);
    CHECK(stat("rejected") == refused);
  }
};

void check_c_refusal(int rc, const std::string& field) {
  CHECK(rc == AB_EINVALID);
  check_message(ab_last_error(), field);
}

TEST_SUITE_BEGIN("hostile.c");

TEST_CASE("ab_client_track_json and _key refuse every hostile event, the bytes given by length") {
  CClient c;
  c.still_usable();
  int n = 0;
  for (const auto& row : hostile::event_rows()) {
    INFO("row: ", row.name);
    // The bytes in a buffer of exactly their length: nothing may read past it.
    std::unique_ptr<char[]> copy(new char[row.text.size() + 1]);
    std::memcpy(copy.get(), row.text.data(), row.text.size());
    if (n++ % 2) {
      check_c_refusal(ab_client_track_json(c.client, copy.get(), row.text.size()), row.field);
    } else {
      char key[AB_KEY_SIZE];
      std::memset(key, 'u', sizeof key);
      check_c_refusal(ab_client_track_json_key(key, c.client, copy.get(), row.text.size()),
                      row.field);
      CHECK(key[0] == 'u');
    }
    ++c.refused;
    c.still_usable();
  }
}

TEST_CASE("ab_client_track_json's refusals say what was wrong, naming the field") {
  CClient c;
  for (const auto& row : message_rows()) {
    INFO("row: ", row.name);
    CHECK(ab_client_track_json(c.client, row.text.data(), row.text.size()) == AB_EINVALID);
    CHECK(std::string(ab_last_error()) == row.message);
    ++c.refused;
    c.still_usable();
  }
}

TEST_CASE("raw NUL bytes with an explicit length: inside a string, before the event, past len") {
  CClient c;
  const std::string event = hostile::kValidEvent;
  // Only a prefix counts when the length says so: the valid event, then garbage past `len`.
  std::string padded = event + std::string("\0garbage", 8);
  int rc = ab_client_track_json(c.client, padded.data(), event.size());
  CHECK_MESSAGE(rc == AB_OK, ab_last_error());
  ++c.accepted;
  // A NUL within a string value.
  std::string inside = hostile::event_with("model", hostile::bytes("\"a\0b\""));
  check_c_refusal(ab_client_track_json(c.client, inside.data(), inside.size()), "model");
  ++c.refused;
  // Length 0 with a valid text behind the pointer: an empty input.
  check_c_refusal(ab_client_track_json(c.client, event.data(), 0), "");
  ++c.refused;
  c.still_usable();
}

TEST_CASE("NULL pointers are refused with AB_EINVALID, naming the argument") {
  CClient c;
  const std::string event = hostile::kValidEvent;
  CHECK(ab_client_track_json(c.client, nullptr, 5) == AB_EINVALID);
  CHECK(std::strstr(ab_last_error(), "json") != nullptr);
  CHECK(ab_client_track_json(nullptr, event.data(), event.size()) == AB_EINVALID);
  CHECK(std::strstr(ab_last_error(), "client") != nullptr);
  CHECK(ab_client_track_json_key(nullptr, c.client, nullptr, 1) == AB_EINVALID);
  char* id = reinterpret_cast<char*>(1);
  CHECK(ab_client_register_agent_json(&id, c.client, nullptr, 3) == AB_EINVALID);
  CHECK(id == nullptr);
  CHECK(ab_client_register_agent_json(nullptr, c.client, "{}", 2) == AB_EINVALID);
  CHECK(ab_client_track(nullptr, c.client, nullptr) == AB_EINVALID);
  CHECK(ab_event_set_model(nullptr, "m") == AB_EINVALID);
  CHECK(ab_event_set_metadata_json(nullptr, "{}", 2) == AB_EINVALID);
  CHECK(ab_event_new(nullptr, "a", "p", "compute", 1) == AB_EINVALID);
  c.still_usable();
}

// Builds the C event of a typed row through ab_event_new and the setters.
ab_event* c_event(const agentburn::Event& e) {
  ab_event* ev = nullptr;
  REQUIRE(ab_event_new(&ev, e.agent_id.c_str(), e.provider.c_str(), e.operation.c_str(),
                       *e.cost_usd) == AB_OK);
  auto set = [&](int (*setter)(ab_event*, const char*), const std::optional<std::string>& v) {
    REQUIRE(setter(ev, v ? v->c_str() : nullptr) == AB_OK);
  };
  set(ab_event_set_model, e.model);
  set(ab_event_set_task_id, e.task_id);
  set(ab_event_set_workflow_id, e.workflow_id);
  set(ab_event_set_timestamp, e.timestamp);
  set(ab_event_set_idempotency_key, e.idempotency_key);
  auto count = [&](int (*setter)(ab_event*, std::int64_t), const std::optional<std::int64_t>& v) {
    REQUIRE(setter(ev, v ? *v : -1) == AB_OK);
  };
  count(ab_event_set_input_tokens, e.input_tokens);
  count(ab_event_set_output_tokens, e.output_tokens);
  count(ab_event_set_cached_input_tokens, e.cached_input_tokens);
  count(ab_event_set_reasoning_tokens, e.reasoning_tokens);
  const std::string* m = e.metadata_json ? &*e.metadata_json : nullptr;
  REQUIRE(ab_event_set_metadata_json(ev, m ? m->data() : nullptr, m ? m->size() : 0) == AB_OK);
  return ev;
}

TEST_CASE("ab_client_track refuses every hostile typed event built with the setters") {
  CClient c;
  c.still_usable();
  for (const auto& row : hostile::typed_rows()) {
    if (!row.c_can_express) continue;
    INFO("row: ", row.name);
    ab_event* ev = c_event(row.event);
    char key[AB_KEY_SIZE];
    std::memset(key, 'u', sizeof key);
    check_c_refusal(ab_client_track(key, c.client, ev), row.field);
    CHECK(key[0] == 'u');
    ab_event_free(ev);
    ++c.refused;
    c.still_usable();
  }
  // What C cannot say: a negative count clears the field, so the event is valid.
  agentburn::Event e = hostile::valid_typed();
  e.input_tokens = -5;
  ab_event* ev = c_event(e);
  CHECK_MESSAGE(ab_client_track(nullptr, c.client, ev) == AB_OK, ab_last_error());
  ab_event_free(ev);
  ++c.accepted;
  c.still_usable();
}

TEST_CASE("ab_client_register_agent_json refuses every hostile agent; *out_id stays NULL") {
  CClient c;
  c.still_usable();
  for (const auto& row : hostile::agent_rows()) {
    INFO("row: ", row.name);
    char* id = reinterpret_cast<char*>(1);
    check_c_refusal(ab_client_register_agent_json(&id, c.client, row.text.data(), row.text.size()),
                    row.field);
    CHECK(id == nullptr);
    c.still_usable();
  }
  char* id = nullptr;
  const std::string& agent = hostile::kValidAgent;
  REQUIRE_MESSAGE(ab_client_register_agent_json(&id, c.client, agent.data(), agent.size()) == AB_OK,
                  ab_last_error());
  CHECK(std::strncmp(id, "ab-local-", 9) == 0);
  ab_free(id);
}

TEST_SUITE_END();

// --- Known issues of the library (tests/fuzz/README.md) ------------------------------------
// Issues the fuzzers and these tables found, each fixed: kept as regression cases.

TEST_SUITE_BEGIN("hostile.fixed_issues");

TEST_CASE(
    "fixed issue: text after the event, and an early duplicate key, are blamed on the "
    "last field read") {
  CppClient c;
  for (const auto& row : hostile::known_issue_rows_wrong_field()) c.refused_json(row);
}

TEST_CASE("fixed issue: a NUL byte ends the input, and what follows it is ignored") {
  CppClient c;
  for (const auto& row : hostile::known_issue_rows_nul_ends_input()) c.refused_json(row);
  agentburn::Event e = hostile::valid_typed();
  e.metadata_json = hostile::bytes("{}\0{]");
  CHECK(c.client->track(e).code() == Status::Code::kInvalid);
  CClient cc;
  for (const auto& row : hostile::known_issue_rows_nul_ends_input()) {
    CHECK(ab_client_track_json(cc.client, row.text.data(), row.text.size()) == AB_EINVALID);
  }
  std::string agent = hostile::kValidAgent + hostile::bytes("\0garbage");
  char* id = nullptr;
  CHECK(ab_client_register_agent_json(&id, cc.client, agent.data(), agent.size()) == AB_EINVALID);
  ab_free(id);
}

// This program holds two copies of the library: the static C++ one and libagentburn.so. Each
// runs its own fork handlers, and both locked the same RocksDB mutexes: the second waited
// forever on the lock the first had taken (seen as a hang of hostile_tests run whole).
TEST_CASE("fixed issue: fork() with two copies of the library in the process does not hang") {
  CppClient c;
  CClient cc;
  REQUIRE(c.client->track(hostile::valid_typed()).ok());
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(c.client->track(hostile::valid_typed()).ok());
  CHECK(ab_client_flush(cc.client, 0) != AB_EINVALID);
}

TEST_CASE("fixed issue: error texts quote the caller's input in full, up to 64 KiB") {
  CppClient c;
  std::string long_name = hostile::event_with(std::string(60000, 'k'), "1");
  std::string long_token = hostile::event_with("model", "\"" + std::string(60000, 'm') + "\xff\"");
  for (const auto& text : {long_name, long_token}) {
    Status s = c.client->track_json(text);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK(s.message().size() <= kMaxMessageBytes);
  }
  auto agent = c.client->register_agent_json("{\"" + std::string(60000, 'k') + "\":1}");
  CHECK(agent.status().message().size() <= kMaxMessageBytes);
}

TEST_CASE("fixed issue: through the C ABI an error text that quotes a NUL is cut there") {
  CClient c;
  std::string event = hostile::event_with("x\\u0000y", "1");
  CHECK(ab_client_track_json(c.client, event.data(), event.size()) == AB_EINVALID);
  INFO("ab_last_error(): ", ab_last_error());
  CHECK(std::strstr(ab_last_error(), "unknown field") != nullptr);
}

TEST_SUITE_END();

}  // namespace
