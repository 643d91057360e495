// Questions asked of the spend ledger: the rows of a time range, grouped by any of their
// dimensions, with the totals of each group and of them all. Pure functions over decoded rows
// (ledger/rows.hpp), so that the library (Client::spend) and the `agentburn` command answer
// the same question the same way, whatever folders the rows were read from.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agentburn/status.hpp"
#include "ledger/rows.hpp"

namespace agentburn::ledger {

// What rows can be grouped by. kDay and kHour are UTC: "2026-12-07", "2026-12-07T13".
enum class Dimension { kAgent, kModel, kProvider, kOperation, kDay, kHour, kTask, kWorkflow };

// "agent", "model", "provider", "operation", "day", "hour", "task", "workflow".
const char* dimension_name(Dimension d);
// A comma-separated list of those names ("agent,model"; "" is none). kInvalid naming the
// first unknown or repeated name and listing the known ones.
Status parse_dimensions(std::string_view list, std::vector<Dimension>* out);

struct Query {
  // Hours since the Unix epoch (UTC): rows of `since_hour` <= hour < `until_hour`.
  std::int64_t since_hour = std::numeric_limits<std::int64_t>::min();
  std::int64_t until_hour = std::numeric_limits<std::int64_t>::max();
  std::vector<Dimension> by;  // empty: one group, the total
};

struct Group {
  std::vector<std::string> key;  // one value per Query::by dimension, in its order
  Totals totals{};
};

struct Spend {
  std::vector<Group> groups;  // ordered by key
  Totals total{};             // of every row in range
};

// The value of one dimension for a row.
std::string dimension_value(const Row& row, Dimension d);
bool in_range(const Query& query, std::int64_t hour);

// Sums rows one at a time (rows may come from many folders, read one after another).
class SpendBuilder {
 public:
  explicit SpendBuilder(Query query) : query_(std::move(query)) {}
  void add(const Row& row);
  Spend finish() const;

 private:
  Query query_;
  std::map<std::vector<std::string>, Totals> groups_;
  Totals total_{};
};

Spend query_spend(const std::vector<Row>& rows, const Query& query);

// Adds `add` to `sum` field by field, wrapping as the merge operator does.
void add_totals(const Totals& add, Totals* sum);

}  // namespace agentburn::ledger
