// lib/ledger/query: grouping, time ranges and totals over decoded ledger rows; and a folder of
// an older format (no ledger column family) read by the command.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "ledger/query.hpp"

#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

using agentburn::ledger::Dimension;
using agentburn::ledger::Row;

namespace {

Row row(std::int64_t hour, const char* agent, const char* model, std::int64_t nanos,
        const char* task = "") {
  Row r;
  r.hour = hour;
  r.agent_id = agent;
  r.model = model;
  r.provider = "openai";
  r.operation = "llm_call";
  r.task_id = task;
  r.totals[agentburn::ledger::kEvents] = 1;
  r.totals[agentburn::ledger::kCostNanos] = nanos;
  r.totals[agentburn::ledger::kInputTokens] = 100;
  return r;
}

// 2026-12-07T00:00Z in hours since the epoch.
constexpr std::int64_t kDay = 1796601600 / 3600;

}  // namespace

TEST_CASE("groups by any dimensions, in key order, with the total of every row in range") {
  std::vector<Row> rows = {
      row(kDay + 1, "a", "gpt-4o", 10, "t1"), row(kDay + 2, "a", "gpt-4o", 20, "t2"),
      row(kDay + 25, "b", "claude", 5, "t1"), row(kDay - 1, "a", "gpt-4o", 1000)};
  agentburn::ledger::Query q;
  REQUIRE(agentburn::ledger::parse_dimensions("day,agent", &q.by).ok());
  q.since_hour = kDay;
  auto spend = agentburn::ledger::query_spend(rows, q);
  REQUIRE(spend.groups.size() == 2);
  CHECK(spend.groups[0].key == std::vector<std::string>{"2026-12-07", "a"});
  CHECK(spend.groups[0].totals[agentburn::ledger::kCostNanos] == 30);
  CHECK(spend.groups[0].totals[agentburn::ledger::kEvents] == 2);
  CHECK(spend.groups[1].key == std::vector<std::string>{"2026-12-08", "b"});
  CHECK(spend.total[agentburn::ledger::kCostNanos] == 35);
  CHECK(spend.total[agentburn::ledger::kInputTokens] == 300);

  q.by = {Dimension::kHour};
  q.until_hour = kDay + 2;  // not included
  spend = agentburn::ledger::query_spend(rows, q);
  REQUIRE(spend.groups.size() == 1);
  CHECK(spend.groups[0].key[0] == "2026-12-07T01");

  q = agentburn::ledger::Query();
  spend = agentburn::ledger::query_spend(rows, q);
  CHECK(spend.groups.size() == 1);
  CHECK(spend.total[agentburn::ledger::kCostNanos] == 1035);
}

TEST_CASE("unknown and repeated dimensions are refused by name") {
  std::vector<Dimension> by;
  auto s = agentburn::ledger::parse_dimensions("model,colour", &by);
  CHECK(!s.ok());
  CHECK(s.message().find("\"colour\"") != std::string::npos);
  CHECK(s.message().find("workflow") != std::string::npos);
  CHECK(!agentburn::ledger::parse_dimensions("model,model", &by).ok());
  CHECK(agentburn::ledger::parse_dimensions("", &by).ok());
  CHECK(by.empty());
}

namespace {

std::string run(const std::string& command, int* code) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace

TEST_CASE("a folder of an older format, without a ledger, is read") {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/agentburn-cli-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const std::string root = tmpl, folder = root + "/p1-older";
  REQUIRE(mkdir(folder.c_str(), 0700) == 0);
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
        {rocksdb::kDefaultColumnFamilyName, o}, {"dead", o}, {"meta", o}};
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* db = nullptr;
    REQUIRE(rocksdb::DB::Open(o, folder, cfs, &h, &db).ok());
    const char key[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    REQUIRE(db->Put(rocksdb::WriteOptions(), h[0], rocksdb::Slice(key, 8),
                    R"({"agentId":"a","provider":"openai","operation":"llm_call","costUsd":0.5,)"
                    R"("timestamp":"2026-01-02T03:04:05.000Z"})")
                .ok());
    for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
    delete db;
  }
  int code = -1;
  auto status = nlohmann::json::parse(
      run(std::string(AGENTBURN_CLI) + " status --json --root " + root, &code));
  CHECK(code == 0);
  CHECK(status["folders"][0]["pending"] == 1);
  CHECK(status["folders"][0]["state"] == "dead");
  auto report = nlohmann::json::parse(
      run(std::string(AGENTBURN_CLI) + " report --json --root " + root, &code));
  CHECK(code == 0);
  // No ledger was kept then: the event still queued is what counts.
  CHECK(report["total"]["events"] == 1);
  CHECK(report["total"]["costUsd"] == doctest::Approx(0.5));
  run("rm -rf " + root, &code);
}
