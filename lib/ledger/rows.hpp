// The spend ledger's rows: what a buffer folder tracked, rolled up per UTC hour and per
// (agentId, provider, model, operation, taskId, workflowId), written in the same RocksDB
// write batch as each event (column family "ledger"), so that a killed process never keeps an
// event without its spend or the reverse.
//
// Key: 8-byte big-endian hour since the Unix epoch, then the origin and the six dimensions,
// each as a 2-byte big-endian length and its bytes. The origin is empty for the rows this
// folder wrote itself; rows copied in from an adopted folder carry that folder's name, so
// that copying them again (an adoption cut short by a crash) overwrites instead of adding.
// Value: kFields little-endian 64-bit integers (a count, nano-dollars, token counts), added
// field by field by the "agentburn.ledger_add" merge operator.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rocksdb {
class MergeOperator;
}

namespace agentburn::ledger {

inline constexpr std::int64_t kNanosPerUsd = 1000000000;

// Dollars as whole nano-dollars, the unit every sum is kept in: 100 x $0.01 is exactly $1.
std::int64_t to_nanos(double usd);
inline double to_usd(std::int64_t nanos) { return static_cast<double>(nanos) / kNanosPerUsd; }

enum Field : int {
  kEvents = 0,
  kCostNanos,
  kInputTokens,
  kOutputTokens,
  kCachedInputTokens,
  kCacheWriteInputTokens,
  kReasoningTokens,
  kUnpriced,
  kFields
};
using Totals = std::array<std::int64_t, kFields>;

struct Dimensions {
  std::string_view agent_id, provider, model, operation, task_id, workflow_id;
};

struct Row {
  std::int64_t hour = 0;  // hours since the Unix epoch, UTC
  std::string origin;
  std::string agent_id, provider, model, operation, task_id, workflow_id;
  Totals totals{};
};

std::string encode_key(std::int64_t hour, std::string_view origin, const Dimensions& d);
// False for a key not in this format.
bool decode_key(std::string_view key, Row* row);
// The same key with another origin (for rows copied in from an adopted folder); "" when the
// key is not in this format.
std::string with_origin(std::string_view key, std::string_view origin);
std::string_view origin_of(std::string_view key);

std::string encode_value(const Totals& t);
// Fields missing from a shorter value (an older format) are 0; false when not a whole
// number of fields.
bool decode_value(std::string_view value, Totals* t);

// The merge operator of the "ledger" column family. One instance serves every database.
std::shared_ptr<rocksdb::MergeOperator> merge_operator();

}  // namespace agentburn::ledger
