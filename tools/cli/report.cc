// agentburn report: spend from the ledgers of every folder on this machine (offline), or
// from a server's GET /api/costs.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "event/codec.hpp"
#include "folders.hpp"
#include "http_get.hpp"
#include "ledger/query.hpp"
#include "output.hpp"

namespace agentburn::cli {

namespace {

using ledger::Dimension;
using ledger::Totals;

struct ReportOptions {
  Common common;
  std::string since, until, by, format = "table", server, key_file;
};

// What a report shows, wherever it came from.
struct View {
  std::vector<Dimension> by;
  ledger::Spend spend;
  bool groups_cost_only = false;  // a server answers only the cost of each group
  std::string source;
};

constexpr const char* kFieldNames[] = {
    "events",          "costUsd",           "inputTokens",
    "outputTokens",    "cachedInputTokens", "cacheWriteInputTokens",
    "reasoningTokens", "unpriced"};
constexpr const char* kColumnNames[] = {"events", "cost",        "input",     "output",
                                        "cached", "cache write", "reasoning", "unpriced"};

std::string field_text(const Totals& t, int i) {
  return i == ledger::kCostNanos ? usd(t[i]) : count(t[i]);
}

nlohmann::json totals_json(const Totals& t, bool cost_only) {
  nlohmann::json j = nlohmann::json::object();
  for (int i = 0; i < ledger::kFields; ++i) {
    if (cost_only && i != ledger::kCostNanos) continue;
    if (i == ledger::kCostNanos) {
      j[kFieldNames[i]] = ledger::to_usd(t[i]);
    } else {
      j[kFieldNames[i]] = t[i];
    }
  }
  return j;
}

bool chronological(const View& v) {
  return !v.by.empty() && (v.by[0] == Dimension::kDay || v.by[0] == Dimension::kHour);
}

void print_json(const View& v) {
  nlohmann::json out = {
      {"source", v.source}, {"by", nlohmann::json::array()}, {"groups", nlohmann::json::array()}};
  for (Dimension d : v.by) out["by"].push_back(ledger::dimension_name(d));
  for (const auto& g : v.spend.groups) {
    nlohmann::json key = nlohmann::json::object();
    for (std::size_t i = 0; i < v.by.size(); ++i) key[ledger::dimension_name(v.by[i])] = g.key[i];
    nlohmann::json row = totals_json(g.totals, v.groups_cost_only);
    row["key"] = key;
    out["groups"].push_back(row);
  }
  out["total"] = totals_json(v.spend.total, false);
  std::printf("%s\n", out.dump(2).c_str());
}

void print_csv(const View& v) {
  std::string line;
  for (Dimension d : v.by) line += std::string(ledger::dimension_name(d)) + ",";
  for (int i = 0; i < ledger::kFields; ++i) {
    if (v.groups_cost_only && i != ledger::kCostNanos) continue;
    line +=
        std::string(kFieldNames[i]) + (i + 1 < ledger::kFields && !v.groups_cost_only ? "," : "");
  }
  std::printf("%s\n", line.c_str());
  auto print_row = [&](const std::vector<std::string>& key, const Totals& t) {
    std::string row;
    for (const auto& k : key) row += csv_field(k) + ",";
    for (int i = 0; i < ledger::kFields; ++i) {
      if (v.groups_cost_only && i != ledger::kCostNanos) continue;
      char buf[40];
      if (i == ledger::kCostNanos) {
        std::snprintf(buf, sizeof buf, "%.9f", ledger::to_usd(t[i]));
      } else {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(t[i]));
      }
      row += std::string(buf) + (i + 1 < ledger::kFields && !v.groups_cost_only ? "," : "");
    }
    std::printf("%s\n", row.c_str());
  };
  if (v.by.empty()) {
    print_row({}, v.spend.total);
  } else {
    for (const auto& g : v.spend.groups) print_row(g.key, g.totals);
  }
}

void print_table(const View& v) {
  std::vector<std::string> header;
  std::vector<bool> right;
  for (Dimension d : v.by) header.push_back(ledger::dimension_name(d)), right.push_back(false);
  std::vector<int> fields;
  for (int i = 0; i < ledger::kFields; ++i) {
    if (!v.groups_cost_only || i == ledger::kCostNanos || i == ledger::kEvents) fields.push_back(i);
  }
  for (int i : fields) header.push_back(kColumnNames[i]), right.push_back(true);
  const bool bars = chronological(v) && v.by.size() == 1;
  if (bars) header.push_back(""), right.push_back(false);
  std::int64_t widest = 1;
  for (const auto& g : v.spend.groups) widest = std::max(widest, g.totals[ledger::kCostNanos]);
  Table t(header, right);
  for (const auto& g : v.spend.groups) {
    std::vector<std::string> row = g.key;
    for (auto& cell : row) {
      if (cell.empty()) cell = "(none)";  // events without that field (no taskId, say)
    }
    for (int i : fields) {
      row.push_back(v.groups_cost_only && i != ledger::kCostNanos ? "-" : field_text(g.totals, i));
    }
    if (bars) row.push_back(bar(static_cast<double>(g.totals[ledger::kCostNanos]) / widest, 30));
    t.add(std::move(row));
  }
  std::vector<std::string> total(v.by.size(), "");
  if (total.empty()) {
    // One row: the total is the table.
  } else {
    total[0] = "total";
  }
  for (int i : fields) total.push_back(field_text(v.spend.total, i));
  if (v.by.empty()) {
    t.add(std::move(total));
  } else {
    t.add_footer(std::move(total));
  }
  std::printf("%s\n", v.source.c_str());
  t.print(stdout);
}

void order_groups(View* v) {
  if (chronological(*v)) return;  // by key: the days in order
  std::stable_sort(v->spend.groups.begin(), v->spend.groups.end(),
                   [](const ledger::Group& a, const ledger::Group& b) {
                     return a.totals[ledger::kCostNanos] > b.totals[ledger::kCostNanos];
                   });
}

std::string range_text(std::int64_t since_ms, std::int64_t until_ms) {
  std::string since = since_ms == INT64_MIN
                          ? "the first record"
                          : detail::format_timestamp_ms(since_ms).substr(0, 16) + "Z";
  std::string until =
      until_ms == INT64_MAX ? "now" : detail::format_timestamp_ms(until_ms).substr(0, 16) + "Z";
  return since + " to " + until;
}

constexpr std::int64_t kMsPerHour = 3600000;

// --- From a server -----------------------------------------------------------------------

double number_in(const nlohmann::json& j, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it != j.end() && it->is_number()) return it->get<double>();
  }
  return 0;
}

// A by-name map as the reference server writes it ({"gpt-4o": 1.25}) or as AgentBurn does
// ([{"model": "gpt-4o", "cost": 1.25, ...}] or {"gpt-4o": {"cost": 1.25}}).
std::vector<std::pair<std::string, double>> cost_map(const nlohmann::json& j,
                                                     const char* name_key) {
  std::vector<std::pair<std::string, double>> out;
  auto cost_of = [](const nlohmann::json& v) {
    return v.is_number() ? v.get<double>()
                         : number_in(v, {"cost", "totalCost", "costUsd", "totalCostUsd", "spend"});
  };
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) out.emplace_back(it.key(), cost_of(it.value()));
  } else if (j.is_array()) {
    for (const auto& item : j) {
      if (!item.is_object()) continue;
      std::string key;
      for (const char* k : {name_key, "name", "key", "id", "date"}) {
        if (item.contains(k) && item[k].is_string()) {
          key = item[k].get<std::string>();
          break;
        }
      }
      out.emplace_back(key, cost_of(item));
    }
  }
  return out;
}

Status server_view(const ReportOptions& o, const std::vector<Dimension>& by, View* v) {
  if (by.size() > 1)
    return Status::invalid("--by: a server report groups by one dimension at a time");
  if (!o.until.empty()) return Status::invalid("--until: a server report cannot end before now");
  std::string base, key, body, path = "/api/costs";
  Status s = server_url("--server", o.server, &base);
  if (s.ok()) s = api_key(o.key_file, &key);
  if (!s.ok()) return s;
  // Without --since, everything: a server counts the last 30 days unless told otherwise.
  std::int64_t days = 36500;
  if (!o.since.empty()) {
    std::int64_t now = detail::now_unix_ms(), since = 0;
    s = parse_time("--since", o.since, now, &since);
    if (!s.ok()) return s;
    days = std::max<std::int64_t>(1, (now - since + 86399999) / 86400000);
  }
  path += "?days=" + std::to_string(days);
  if (!by.empty() && by[0] == Dimension::kHour) path += "&groupBy=hour";
  s = get_json(base, path, key, &body);
  if (!s.ok()) return s;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("data") && j["data"].is_object()) j = j["data"];
  if (!j.is_object()) {
    return Status::http("GET " + base + path +
                        ": the answer is not a JSON object: " + body.substr(0, 200));
  }
  Totals& t = v->spend.total;
  t[ledger::kCostNanos] =
      ledger::to_nanos(number_in(j, {"totalCost", "totalCostUsd", "total_cost", "cost"}));
  t[ledger::kEvents] = static_cast<std::int64_t>(number_in(j, {"eventCount", "events", "count"}));
  t[ledger::kInputTokens] =
      static_cast<std::int64_t>(number_in(j, {"totalInputTokens", "inputTokens"}));
  t[ledger::kOutputTokens] =
      static_cast<std::int64_t>(number_in(j, {"totalOutputTokens", "outputTokens"}));
  t[ledger::kUnpriced] = static_cast<std::int64_t>(number_in(j, {"unpricedCount", "unpriced"}));
  v->by = by;
  v->groups_cost_only = true;
  v->source = "spend from " + base + path;
  if (by.empty()) return Status();
  // Agents by id, as the ledgers know them ("byAgent" is by name at AgentBurn); hours from
  // the time series ("2026-01-02T03:00:00Z", cut to the ledger's "2026-01-02T03").
  static const std::pair<Dimension, std::pair<const char*, const char*>> kMaps[] = {
      {Dimension::kAgent, {"byAgentId", "agentId"}},
      {Dimension::kAgent, {"byAgent", "agentId"}},
      {Dimension::kHour, {"timeSeries", "date"}},
      {Dimension::kModel, {"byModel", "model"}},
      {Dimension::kProvider, {"byProvider", "provider"}},
      {Dimension::kOperation, {"byOperation", "operation"}},
      {Dimension::kTask, {"byTask", "taskId"}},
      {Dimension::kDay, {"byDay", "date"}}};
  for (const auto& [dim, names] : kMaps) {
    if (dim != by[0] || !j.contains(names.first)) continue;
    for (const auto& [name, cost] : cost_map(j[names.first], names.second)) {
      ledger::Group g;
      g.key = {dim == Dimension::kHour ? name.substr(0, 13) : name};
      g.totals[ledger::kCostNanos] = ledger::to_nanos(cost);
      v->spend.groups.push_back(std::move(g));
    }
    std::sort(v->spend.groups.begin(), v->spend.groups.end(),
              [](const ledger::Group& a, const ledger::Group& b) { return a.key < b.key; });
    return Status();
  }
  return Status::invalid(std::string("--by ") + ledger::dimension_name(by[0]) +
                         ": this server's /api/costs has no such breakdown (AgentBurn's has "
                         "agent, model, provider, operation, task, day, hour)");
}

int run_report(const ReportOptions& o) {
  std::vector<Dimension> by;
  Status s = ledger::parse_dimensions(o.by, &by);
  if (!s.ok()) return fail(kUsage, "--by: " + s.message());
  const std::string format = o.common.json ? "json" : o.format;
  View v;
  int unreadable = 0;
  if (!o.server.empty()) {
    s = server_view(o, by, &v);
    if (!s.ok()) return fail(s.code() == Status::Code::kInvalid ? kUsage : kFailure, s.message());
  } else {
    const std::int64_t now = detail::now_unix_ms();
    std::int64_t since = INT64_MIN, until = INT64_MAX;
    if (!o.since.empty()) s = parse_time("--since", o.since, now, &since);
    if (s.ok() && !o.until.empty()) s = parse_time("--until", o.until, now, &until);
    if (!s.ok()) return fail(kUsage, s.message());
    if (since != INT64_MIN && until != INT64_MAX && until <= since) {
      return fail(kUsage, "--until (" + o.until + ") must be later than --since (" + o.since + ")");
    }
    ledger::Query q;
    q.by = by;
    // The ledger counts by the hour: a range covers each hour it touches.
    if (since != INT64_MIN) q.since_hour = since / kMsPerHour;
    if (until != INT64_MAX) q.until_hour = (until + kMsPerHour - 1) / kMsPerHour;
    ledger::SpendBuilder builder(q);
    const std::string root = o.common.resolved_root();
    s = read_all_ledgers(
        root, [&](const ledger::Row& row) { builder.add(row); }, &unreadable);
    if (!s.ok()) return fail(kFailure, s.message());
    v.by = by;
    v.spend = builder.finish();
    v.source = "spend recorded under " + root + ", " + range_text(since, until) + " (UTC)";
  }
  order_groups(&v);
  if (format == "json") {
    print_json(v);
  } else if (format == "csv") {
    print_csv(v);
  } else {
    print_table(v);
  }
  return unreadable ? kPartial : kOk;
}

}  // namespace

void add_report(CLI::App& app, Command* run) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = add_command(app, run, "report",
                              "Spend from the spend ledgers of every buffer folder (offline), "
                              "or from a server's GET /api/costs",
                              o, run_report);
  cmd->add_option("--since", o->since, "From: 7d, 12h, 2w, 2026-12-01 or 2026-12-01T09:00:00Z");
  cmd->add_option("--until", o->until, "Until (not included); same forms as --since");
  cmd->add_option("--by", o->by,
                  "Group by, comma-separated: agent, model, provider, operation, day, hour, "
                  "task, workflow");
  cmd->add_option("--format", o->format, "table (default), csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  cmd->add_option("--server", o->server,
                  "Read GET /api/costs of this AgentBurn server instead of the local ledgers");
  add_key_file(cmd, &o->key_file);
  set_examples(cmd,
               "  agentburn report --since 7d --by day\n"
               "  agentburn report --since 2026-12-01 --until 2026-12-08 --by agent,model\n"
               "  agentburn report --by model --format csv > spend.csv\n"
               "  AGENTBURN_API_KEY=... agentburn report --server https://agentburn.example.com "
               "--by model\n");
}

}  // namespace agentburn::cli
