// agentburn budgets: each budget's window with its spend, computed from the spend ledgers of
// every folder on this machine. The budgets come from a file in the library's budgets JSON
// and/or from a server's GET /api/alerts.
#include <map>
#include <nlohmann/json.hpp>

#include "budget/engine.hpp"
#include "budget/json.hpp"
#include "common.hpp"
#include "event/codec.hpp"
#include "folders.hpp"
#include "http_get.hpp"
#include "output.hpp"

namespace agentburn::cli {

namespace {

struct BudgetsOptions {
  Common common;
  std::string budgets_file, server, key_file;
};

// A server's alerts as budgets of the library's JSON form: AgentBurn's {"name", "agentId",
// "budgetUsd", "periodType", "isActive"} become {"name", "agentId", "limitUsd", "period"},
// with action "alert" (an alert only warns); inactive alerts are left out.
Status alerts_as_budgets(const std::string& body, nlohmann::json* out,
                         std::map<std::string, double>* server_spend) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  for (const char* wrap : {"alerts", "data"}) {
    if (j.is_object() && j.contains(wrap)) j = j[wrap];
  }
  if (!j.is_array()) return Status::http("GET /api/alerts: the answer is not a list of alerts");
  for (const auto& a : j) {
    if (!a.is_object()) continue;
    nlohmann::json b = {{"action", "alert"}};
    for (const char* k : {"name", "id"}) {
      if (a.contains(k) && !b.contains("name"))
        b["name"] = a[k].is_string() ? a[k] : nlohmann::json(a[k].dump());
    }
    if (a.contains("isActive") && a["isActive"] == false) continue;
    for (const char* k : {"budgetUsd", "limitUsd", "threshold", "amount", "limit"}) {
      if (a.contains(k) && a[k].is_number() && !b.contains("limitUsd")) b["limitUsd"] = a[k];
    }
    b["period"] = "daily";
    for (const char* k : {"periodType", "period"}) {
      if (a.contains(k) && a[k].is_string()) b["period"] = a[k];
    }
    for (const char* k : {"agentId", "taskId", "workflowId", "provider", "model"}) {
      if (a.contains(k) && a[k].is_string()) b[k] = a[k];
    }
    if (b.contains("name") && a.contains("currentSpend") && a["currentSpend"].is_number()) {
      (*server_spend)[b["name"].get<std::string>()] = a["currentSpend"].get<double>();
    }
    out->push_back(b);
  }
  return Status();
}

int run_budgets(const BudgetsOptions& o) {
  if (o.budgets_file.empty() && o.server.empty()) {
    return fail(kUsage,
                "give the budgets: --budgets-file FILE (the library's budgets JSON) "
                "and/or --server URL (its GET /api/alerts)");
  }
  nlohmann::json all = nlohmann::json::array();
  // What the server counts for each of its alerts (the whole fleet's spend, where the local
  // ledgers hold this machine's).
  std::map<std::string, double> server_spend;
  if (!o.budgets_file.empty()) {
    std::string text;
    Status s = read_small_file("--budgets-file", o.budgets_file, &text);
    if (!s.ok()) return fail(kUsage, s.message());
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_array())
      return fail(kUsage, "--budgets-file: " + o.budgets_file + " is not a JSON array of budgets");
    for (auto& b : j) all.push_back(b);
  }
  if (!o.server.empty()) {
    std::string base, key, body;
    Status s = server_url("--server", o.server, &base);
    if (s.ok()) s = api_key(o.key_file, &key);
    if (!s.ok()) return fail(kUsage, s.message());
    s = get_json(base, "/api/alerts", key, &body);
    if (s.ok()) s = alerts_as_budgets(body, &all, &server_spend);
    if (!s.ok()) return fail(kFailure, s.message());
  }
  std::vector<Budget> budgets;
  Status s = budget::parse_budgets_json(all.dump(), &budgets);
  if (!s.ok()) return fail(o.budgets_file.empty() ? kFailure : kUsage, s.message());
  budget::Engine engine(budgets);
  const std::int64_t now = detail::now_unix_ms();
  int unreadable = 0;
  s = read_all_ledgers(
      o.common.resolved_root(),
      [&](const ledger::Row& row) {
        engine.add(budget::scope_of(row), row.hour, row.totals[ledger::kCostNanos], now, nullptr);
      },
      &unreadable);
  if (!s.ok()) return fail(kFailure, s.message());
  std::vector<BudgetState> states = engine.list(now);
  auto server_text = [&](const BudgetState& b) {
    auto it = server_spend.find(b.name);
    return it == server_spend.end() ? std::string("-") : usd(ledger::to_nanos(it->second));
  };
  if (o.common.json) {
    auto out = nlohmann::json::parse(budget::states_json(states));
    for (auto& state : out) {
      auto it = server_spend.find(state.value("name", ""));
      if (it != server_spend.end()) state["serverSpentUsd"] = it->second;
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    Table t({"budget", "scope", "period", "limit", "spent", "held", "remaining", "resets",
             "server spent"},
            {false, false, false, true, true, true, true, false, true});
    for (const auto& b : states) {
      t.add({b.name, b.scope.empty() ? "-" : b.scope, b.period, usd(ledger::to_nanos(b.limit_usd)),
             usd(ledger::to_nanos(b.spent_usd)), usd(ledger::to_nanos(b.held_usd)),
             usd(ledger::to_nanos(b.remaining_usd)),
             b.resets_at_ms ? detail::format_timestamp_ms(b.resets_at_ms).substr(0, 16) + "Z" : "-",
             server_text(b)});
    }
    t.print(stdout);
    std::printf(
        "spend from the ledgers under %s; holds live in the memory of running clients "
        "and are not counted here\n",
        o.common.resolved_root().c_str());
  }
  return unreadable ? kPartial : kOk;
}

}  // namespace

void add_budgets(CLI::App& app, Command* run) {
  auto o = std::make_shared<BudgetsOptions>();
  CLI::App* cmd = add_command(app, run, "budgets",
                              "Each budget window with its spend and what remains, from the "
                              "spend ledgers of this machine",
                              o, run_budgets);
  cmd->add_option("--budgets-file", o->budgets_file,
                  "Budgets in the library's JSON: [{\"name\", \"limitUsd\", \"period\", "
                  "\"agentId\", \"taskId\": \"*\", ...}]");
  cmd->add_option("--server", o->server, "Also the alerts of this server (GET /api/alerts)");
  add_key_file(cmd, &o->key_file);
  set_examples(
      cmd,
      "  agentburn budgets --budgets-file budgets.json\n"
      "  AGENTBURN_API_KEY=... agentburn budgets --server https://agentburn.example.com\n");
}

}  // namespace agentburn::cli
