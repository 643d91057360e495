// Private to the buffer's source files (buffer*.cc): key encoding, the dead-letter value
// format, and the RocksDB options every buffer database is opened with.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "agentburn/options.hpp"
#include "ledger/rows.hpp"

namespace agentburn::detail {

inline constexpr std::size_t kMoveChunk = 1000;
inline constexpr std::uint64_t kCompactEvery = 200000;
inline constexpr std::size_t kStageMaxEvents = 1000;
// Durability::kBuffered while stage writes fail: what may wait in memory before track refuses.
inline constexpr std::uint64_t kStageMaxBytesFailing = 4u << 20;
inline constexpr std::uint64_t kKeyOverhead = 8;  // counted against the cap with each event

// An event's key: its 8-byte big-endian sequence number, so that keys sort in arrival order.
struct SeqKey {
  char bytes[8];
  explicit SeqKey(std::uint64_t seq) {
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(seq >> (56 - 8 * i));
  }
  rocksdb::Slice slice() const { return rocksdb::Slice(bytes, 8); }
};

std::uint64_t decode_seq(const rocksdb::Slice& s);
// A settle record's key: the event's sequence number, then its idempotency key.
inline std::string settle_key(std::uint64_t seq, std::string_view tag) {
  std::string k(SeqKey(seq).bytes, 8);
  k.append(tag);
  return k;
}
// A dead letter's value: 4-byte little-endian event length, the event, the reason.
std::string encode_dead(std::string_view event, std::string_view reason);
bool decode_dead(const rocksdb::Slice& v, std::string* event, std::string* reason);

// The identity of a dead letter's event: two 64-bit hashes of its text, so that a letter
// copied twice (adoption cut by a crash between its copy and its delete) or an event queued
// twice and refused twice is kept once.
using DeadId = std::pair<std::uint64_t, std::uint64_t>;
DeadId dead_id(std::string_view event_json);

// The ledger rows of events leaving a folder, summed per row, to add in the write that takes
// them out (see buffer.hpp's layout).
class LedgerFold {
 public:
  void add(std::string_view event_json);
  void add_dead(const rocksdb::Slice& dead_letter);
  // The row of a stored value: an event's text, or a dead letter's (`dead`). False when it
  // holds no event to count.
  static bool row_of(const rocksdb::Slice& value, bool dead, std::string* key, ledger::Totals* t);
  void write(rocksdb::WriteBatch* wb, rocksdb::ColumnFamilyHandle* cf) const;

 private:
  std::map<std::string, ledger::Totals> rows_;
};

rocksdb::Options db_options(bool create, rocksdb::Env* env, const LogCallback& log);
rocksdb::WriteOptions write_options(Durability d);

}  // namespace agentburn::detail
