// Store::ingest (tools/server/store.cc) on its own: deduplication inside a batch and against
// what is stored, the ids it answers, and the records it writes.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "store.hpp"
#include "support.hpp"

using agentburn::server::IncomingEvent;
using agentburn::server::IngestOutcome;
using agentburn::server::Store;

namespace {

IncomingEvent incoming(const std::string& key) {
  IncomingEvent e;
  e.idempotency_key = key;
  e.wire = R"({"agentId":"agt_1","provider":"p","operation":"compute","costUsd":1,)"
           R"("timestamp":"2026-01-02T03:04:05.000Z","idempotency_key":")" +
           key + "\"}";
  agentburn::detail::Normalized norm;
  agentburn::Event event;
  event.agent_id = "agt_1";
  event.provider = "p";
  event.operation = "compute";
  event.cost_usd = 1;
  event.timestamp = "2026-01-02T03:04:05.000Z";
  e.facts = agentburn::server::facts_of_event(event, norm);
  return e;
}

std::vector<IncomingEvent> incoming(const std::vector<std::string>& keys) {
  std::vector<IncomingEvent> out;
  for (const auto& k : keys) out.push_back(incoming(k));
  return out;
}

IngestOutcome ingest(Store& store, const std::vector<std::string>& keys, bool dedupe = true) {
  IngestOutcome out;
  agentburn::Status s = store.ingest(incoming(keys), dedupe, &out);
  INFO(s.to_string());
  REQUIRE(s.ok());
  REQUIRE(out.ids.size() == keys.size());
  return out;
}

std::vector<std::string> records(Store& store) {  // oldest first
  std::vector<std::string> out;
  REQUIRE(store
              .scan_newest_first([&](std::string_view r) {
                out.emplace(out.begin(), r);
                return true;
              })
              .ok());
  return out;
}

std::string record_key(const std::string& record) {
  auto at = record.find("\"idempotency_key\":\"");
  REQUIRE(at != std::string::npos);
  at += 19;
  return record.substr(at, record.find('"', at) - at);
}

}  // namespace

TEST_SUITE_BEGIN("server.store");

TEST_CASE("ingest: duplicates in the batch and in the store get the first event's id") {
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  REQUIRE(Store::open(dir.sub("db"), &store).ok());

  IngestOutcome first = ingest(*store, {"a", "b", "a", "c", "a"});
  CHECK(first.stored == 3);
  CHECK(first.duplicates == 2);
  CHECK(first.ids[0] == first.ids[2]);
  CHECK(first.ids[0] == first.ids[4]);
  CHECK(first.ids[0] != first.ids[1]);
  CHECK(first.ids[1] != first.ids[3]);
  for (const auto& id : first.ids) CHECK(id.rfind("evt_", 0) == 0);

  // c and a are stored; d is new and twice in the batch; a stored key twice in the batch.
  IngestOutcome second = ingest(*store, {"c", "d", "d", "a", "a", "e"});
  CHECK(second.stored == 2);
  CHECK(second.duplicates == 4);
  CHECK(second.ids[0] == first.ids[3]);
  CHECK(second.ids[1] == second.ids[2]);
  CHECK(second.ids[3] == first.ids[0]);
  CHECK(second.ids[4] == first.ids[0]);
  CHECK(second.ids[5] != second.ids[1]);

  // All duplicates: nothing written.
  IngestOutcome third = ingest(*store, {"e", "b"});
  CHECK(third.stored == 0);
  CHECK(third.ids == std::vector<std::string>{second.ids[5], first.ids[1]});

  // Without deduplication, every event is stored under a new id, and the index is unchanged.
  IngestOutcome plain = ingest(*store, {"a", "a", "z"}, /*dedupe=*/false);
  CHECK(plain.stored == 3);
  CHECK(plain.duplicates == 0);
  CHECK(plain.ids[0] != plain.ids[1]);
  CHECK(ingest(*store, {"a"}).ids[0] == first.ids[0]);
  CHECK(ingest(*store, {"z"}).stored == 1);  // "z" was not indexed by the plain ingest

  // The records, in receive order: {"id":...,"receivedAt":..., then the wire form.
  std::vector<std::string> stored = records(*store);
  std::vector<std::string> keys;
  for (const auto& r : stored) keys.push_back(record_key(r));
  CHECK(keys == std::vector<std::string>{"a", "b", "c", "d", "e", "a", "a", "z", "z"});
  const std::string& r0 = stored[0];
  CHECK(r0.rfind("{\"id\":\"" + first.ids[0] + "\",\"receivedAt\":\"", 0) == 0);
  std::string wire = incoming("a").wire;
  CHECK(r0.size() > wire.size());
  CHECK(r0.compare(r0.size() - (wire.size() - 1), std::string::npos, wire, 1) == 0);
  CHECK(r0[r0.size() - wire.size()] == ',');
  auto tail = r0.substr(0, r0.size() - wire.size());  // {"id":"...","receivedAt":"..."
  CHECK(tail.size() ==
        std::string("{\"id\":\"\",\"receivedAt\":\"\"").size() + first.ids[0].size() + 24);
}

TEST_CASE("ingest: the index and the sequence survive reopening the store") {
  testing::TempDir dir;
  std::string first_a;
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::open(dir.sub("db"), &store).ok());
    first_a = ingest(*store, {"a", "b"}).ids[0];
  }
  std::unique_ptr<Store> store;
  REQUIRE(Store::open(dir.sub("db"), &store).ok());
  IngestOutcome again = ingest(*store, {"b", "c", "a"});
  CHECK(again.stored == 1);
  CHECK(again.ids[2] == first_a);
  std::vector<std::string> keys;
  for (const auto& r : records(*store)) keys.push_back(record_key(r));
  CHECK(keys == std::vector<std::string>{"a", "b", "c"});
}

// The all-time totals of agent agt_1 in the aggregates.
agentburn::server::Totals agent_totals(Store& store) {
  agentburn::server::Totals sum;
  agentburn::server::Cell cell;
  REQUIRE(store
              .scan_aggregates("a",
                               [&](std::string_view key, std::string_view value) {
                                 REQUIRE(agentburn::server::decode_cell(key, value, &cell));
                                 sum.add(cell.totals);
                                 return true;
                               })
              .ok());
  return sum;
}

TEST_CASE("ingest: the aggregates count what is stored, duplicates once, and are rebuilt") {
  testing::TempDir dir;
  {
    std::unique_ptr<Store> store;
    REQUIRE(Store::open(dir.sub("db"), &store).ok());
    ingest(*store, {"a", "b", "a"});
    ingest(*store, {"b", "c"});
    auto t = agent_totals(*store);
    CHECK(t.events == 3);
    CHECK(t.cost_nanos == 3000000000);
  }
  {
    std::unique_ptr<Store> store;  // a run without them: they go stale
    REQUIRE(Store::open(dir.sub("db"), &store, /*aggregates=*/false).ok());
    CHECK_FALSE(store->has_aggregates());
    ingest(*store, {"d"});
  }
  std::unique_ptr<Store> store;  // rebuilt from the four stored events on open
  REQUIRE(Store::open(dir.sub("db"), &store).ok());
  auto t = agent_totals(*store);
  CHECK(t.events == 4);
  CHECK(t.cost_nanos == 4000000000);
}

TEST_CASE("ingest: an empty list stores nothing") {
  testing::TempDir dir;
  std::unique_ptr<Store> store;
  REQUIRE(Store::open(dir.sub("db"), &store).ok());
  IngestOutcome out = ingest(*store, {});
  CHECK(out.stored == 0);
  CHECK(out.ids.empty());
  CHECK(records(*store).empty());
}

TEST_SUITE_END();
