// Cost aggregates kept as events are stored, so that reading totals never scans the events.
//
// They live in the store's "aggregates" column family, written with RocksDB merges in the
// same WriteBatch as the events they count: an event and its counts are stored together or
// not at all, and a duplicate (which stores nothing) counts nothing.
//
// Keys (strings are written as a 2-byte big-endian length and their bytes):
// - 'a' agentId provider: everything an agent spent with a provider, all time. These are the
//   sums of the agent's 'c' cells over every hour: kept in memory only (Store), never written.
// - 'c' hour agentId provider operation model: one UTC hour of the event timestamps.
// - 't' hour agentId provider operation taskId: the same hour, by task.
// `hour` is the number of hours since 1970 (of the event's own timestamp), 8 bytes
// big-endian with the sign bit flipped, so that cells sort by time. Absent models and tasks
// are "unknown". Values are Totals, 48 bytes; the merge adds them (and keeps the latest
// timestamp), so the order merges are applied in never changes a result.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "facts.hpp"

namespace rocksdb {
class MergeOperator;
}  // namespace rocksdb

namespace agentburn::server {

// From a stored record (the event's wire form plus "id" and "receivedAt"); false when it is
// not one.
bool facts_of_record(std::string_view record, EventFacts* out);

// Key of each kind for an event; see the file comment.
std::string agent_key(std::string_view agent_id, std::string_view provider);
// Whether cells of `kind` are written to the database ('a' cells are derived from 'c' ones).
inline bool stored_kind(char kind) {
  return kind != 'a';
}
std::string cell_key(const EventFacts& facts, char kind);  // kind 'c' (model) or 't' (task)
std::string hour_prefix(char kind, std::int64_t hour);

// A decoded key.
struct Cell {
  char kind = 0;
  std::int64_t hour = 0;  // 'c' and 't' only
  std::string agent_id, provider, operation;
  std::string name;  // the model ('c') or the task ('t')
  Totals totals;
};

bool decode_cell(std::string_view key, std::string_view value, Cell* out);

std::string encode_totals(const Totals& t);
bool decode_totals(std::string_view value, Totals* out);

// The sums of a batch of events, by key, before they go into one WriteBatch.
using PendingTotals = std::unordered_map<std::string, Totals>;
void count_event(const EventFacts& facts, PendingTotals* pending);

std::shared_ptr<rocksdb::MergeOperator> totals_merge_operator();

}  // namespace agentburn::server
