#include "ledger/query.hpp"

#include <algorithm>
#include <array>

#include "event/codec.hpp"

namespace agentburn::ledger {

namespace {

constexpr std::array<Dimension, 8> kAll = {
    Dimension::kAgent, Dimension::kModel, Dimension::kProvider, Dimension::kOperation,
    Dimension::kDay,   Dimension::kHour,  Dimension::kTask,     Dimension::kWorkflow};
constexpr std::int64_t kMsPerHour = 3600000;

std::string known_names() {
  std::string out;
  for (Dimension d : kAll) {
    if (!out.empty()) out += ", ";
    out += dimension_name(d);
  }
  return out;
}

}  // namespace

const char* dimension_name(Dimension d) {
  switch (d) {
    case Dimension::kAgent:
      return "agent";
    case Dimension::kModel:
      return "model";
    case Dimension::kProvider:
      return "provider";
    case Dimension::kOperation:
      return "operation";
    case Dimension::kDay:
      return "day";
    case Dimension::kHour:
      return "hour";
    case Dimension::kTask:
      return "task";
    case Dimension::kWorkflow:
      return "workflow";
  }
  return "";
}

Status parse_dimensions(std::string_view list, std::vector<Dimension>* out) {
  std::vector<Dimension> dims;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    auto it = std::find_if(kAll.begin(), kAll.end(),
                           [&](Dimension d) { return name == dimension_name(d); });
    if (it == kAll.end()) {
      return Status::invalid("unknown dimension \"" + std::string(name) +
                             "\"; known: " + known_names());
    }
    if (std::find(dims.begin(), dims.end(), *it) != dims.end()) {
      return Status::invalid("dimension \"" + std::string(name) + "\" is given twice");
    }
    dims.push_back(*it);
  }
  *out = std::move(dims);
  return Status();
}

std::string dimension_value(const Row& row, Dimension d) {
  switch (d) {
    case Dimension::kAgent:
      return row.agent_id;
    case Dimension::kModel:
      return row.model;
    case Dimension::kProvider:
      return row.provider;
    case Dimension::kOperation:
      return row.operation;
    case Dimension::kDay:
      return detail::format_timestamp_ms(row.hour * kMsPerHour).substr(0, 10);
    case Dimension::kHour:
      return detail::format_timestamp_ms(row.hour * kMsPerHour).substr(0, 13);
    case Dimension::kTask:
      return row.task_id;
    case Dimension::kWorkflow:
      return row.workflow_id;
  }
  return "";
}

bool in_range(const Query& query, std::int64_t hour) {
  return hour >= query.since_hour && hour < query.until_hour;
}

void add_totals(const Totals& add, Totals* sum) {
  for (int i = 0; i < kFields; ++i) {
    (*sum)[i] = static_cast<std::int64_t>(static_cast<std::uint64_t>((*sum)[i]) +
                                          static_cast<std::uint64_t>(add[i]));
  }
}

void SpendBuilder::add(const Row& row) {
  if (!in_range(query_, row.hour)) return;
  std::vector<std::string> key;
  key.reserve(query_.by.size());
  for (Dimension d : query_.by) key.push_back(dimension_value(row, d));
  add_totals(row.totals, &groups_[std::move(key)]);
  add_totals(row.totals, &total_);
}

Spend SpendBuilder::finish() const {
  Spend out;
  out.total = total_;
  out.groups.reserve(groups_.size());
  for (const auto& [key, totals] : groups_) out.groups.push_back(Group{key, totals});
  return out;
}

Spend query_spend(const std::vector<Row>& rows, const Query& query) {
  SpendBuilder b(query);
  for (const auto& row : rows) b.add(row);
  return b.finish();
}

}  // namespace agentburn::ledger
