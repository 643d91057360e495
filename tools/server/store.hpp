// The server's database: agents, events and the deduplication index, in one RocksDB folder.
//
// Column families:
// - "default": "format_version" -> decimal text.
// - "agents": agent id -> the agent's JSON.
// - "agent_order": 8-byte big-endian registration number -> agent id (ids made in the same
//   millisecond do not sort by creation).
// - "events": 8-byte big-endian receive sequence number -> the stored record: the event's
//   wire form with the server's "id" and "receivedAt" in front.
// - "keys": idempotency_key -> the id of the event stored under it.
// - "aggregates": the cost totals of the stored events (aggregates.hpp), merged in the same
//   WriteBatch as the events. "default" holds "aggregates" -> "1" while they count every
//   stored event; a server run without them removes it, and the next one run with them
//   rebuilds them from the events on open.
// - "alerts": alert id -> the budget alert's JSON (POST /api/alerts).
//
// Writes of one ingest request go in one WriteBatch, so a batch is stored whole or not at
// all. The WAL is on and not synced: what was acknowledged survives a killed process, not a
// power cut.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/status.hpp"
#include "aggregates.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace agentburn::server {

// One validated event, ready to store.
struct IncomingEvent {
  std::string idempotency_key;
  std::string wire;  // encode_event's output: starts with {"agentId":
  EventFacts facts;  // what the aggregates count of it
};

struct IngestOutcome {
  std::vector<std::string> ids;  // one per incoming event, in order; a duplicate's is the first's
  std::size_t stored = 0;
  std::size_t duplicates = 0;
};

class Store {
 public:
  // `aggregates`: keep the cost aggregates as events are stored (and rebuild them on open
  // if a run without them left them behind).
  static Status open(const std::string& dir, std::unique_ptr<Store>* out, bool aggregates = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Status put_agent(const std::string& id, const std::string& record_json);
  // False when absent or on a read error (a read error is not an agent).
  bool has_agent(const std::string& id);
  // In creation order.
  Status list_agents(std::vector<std::string>* records);

  // Stores the events that are not duplicates (by idempotency key, within the batch and
  // against everything stored before) when `deduplicate`; every event otherwise.
  Status ingest(const std::vector<IncomingEvent>& events, bool deduplicate, IngestOutcome* out);

  // Visits stored records, newest first, until `visit` returns false.
  Status scan_newest_first(const std::function<bool(std::string_view record)>& visit);
  // Visits stored records with a sequence number below `before`, newest first, until
  // `visit` returns false.
  Status scan_before(std::uint64_t before,
                     const std::function<bool(std::uint64_t seq, std::string_view record)>& visit);

  bool has_aggregates() const { return aggregates_; }
  // Visits the aggregate keys from `from` on while they start with `from`'s first byte (their
  // kind), until `visit` returns false. Agent ('a') and model ('c') cells are read from a
  // copy in memory, kept up to date by ingest: a read never merges RocksDB's operands.
  Status scan_aggregates(
      const std::string& from,
      const std::function<bool(std::string_view key, std::string_view value)>& visit);

  Status put_alert(const std::string& id, const std::string& record_json);
  // `found`: whether there was such an alert.
  Status delete_alert(const std::string& id, bool* found);
  // In creation order (alert ids are UUIDv7s).
  Status list_alerts(std::vector<std::string>* records);

 private:
  Store() = default;
  Status rebuild_aggregates();
  Status load_cached_aggregates();
  static bool cached_kind(char kind) { return kind == 'a' || kind == 'c'; }

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* agents_ = nullptr;
  rocksdb::ColumnFamilyHandle* events_ = nullptr;
  rocksdb::ColumnFamilyHandle* keys_ = nullptr;
  rocksdb::ColumnFamilyHandle* agent_order_ = nullptr;
  rocksdb::ColumnFamilyHandle* aggregates_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* alerts_ = nullptr;
  bool aggregates_ = true;
  // The 'c' aggregates as stored, and the 'a' ones summed from them, by key. Ingest adds to it
  // after its write.
  std::map<std::string, Totals, std::less<>> cached_;
  std::shared_mutex cached_mu_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Held across the dedupe lookups and the write, so two requests carrying the same key
  // cannot both find it absent and both store it. Also guards next_seq_.
  std::mutex ingest_mu_;
  std::uint64_t next_seq_ = 1;
  std::mutex agents_mu_;  // guards next_agent_
  std::uint64_t next_agent_ = 1;
};

}  // namespace agentburn::server
