// The dashboard page (GET /) in a real headless chromium: it asks for the key once, shows
// the totals GET /api/dashboard answers, draws its charts, logs no error, says so when the
// key is wrong, and fits a narrow window. A screenshot is written to the build folder.
#include <cstdint>
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "browser.hpp"
#include "harness.hpp"

using nlohmann::json;
using testing::make_event;
using testing::TestServer;

namespace {

std::string base64_decode(const std::string& in) {
  std::string out;
  int bits = 0;
  std::uint32_t value = 0;  // the last bits read; unsigned, so that shifting out is defined
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (v < 0) continue;
    value = ((value << 6) | static_cast<std::uint32_t>(v)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
    }
  }
  return out;
}

// As the page writes money: US dollars, thousands separated, 2 decimals (4 under a cent).
std::string money(double usd) {
  char digits[64];
  std::snprintf(digits, sizeof digits, usd > 0 && usd < 0.01 ? "%.4f" : "%.2f", usd);
  std::string text = digits;
  std::size_t dot = text.find('.');
  for (std::size_t i = dot; i > 3; i -= 3) text.insert(i - 3, ",");
  return "$" + text;
}

std::string js_string(const std::string& s) {
  return json(s).dump();
}

const std::chrono::seconds kWait(30);

}  // namespace

TEST_SUITE_BEGIN("server.browser");

TEST_CASE("the dashboard page in chromium: key, totals, charts, no console errors, screenshot") {
  TestServer s;
  std::string a = s.register_agent("support-bot"), b = s.register_agent("research-agent");
  testing::TempDir profile;
  testing::Browser browser(AGENTBURN_CHROMIUM, profile.sub("profile"));
  bool started = browser.start();
  INFO(browser.error());
  REQUIRE(started);

  // A wrong key: the page says so and asks again.
  REQUIRE(browser.call("Page.navigate", {{"url", s.url("/")}}).is_object());
  REQUIRE(browser.wait_until("document.body.dataset.state === 'login'", kWait));
  browser.eval(
      "document.getElementById('key').value = 'not-the-key';"
      "document.getElementById('login-form').requestSubmit(); true");
  REQUIRE(browser.wait_until("document.body.dataset.state === 'denied'", kWait));
  CHECK(browser.eval("document.getElementById('login-message').textContent") ==
        "The server refused that API key: enter it again.");
  CHECK(browser.eval("sessionStorage.getItem('agentburn.apiKey')").is_null());
  browser.clear_events();  // the refused request is logged as a failed load

  // The right key, with nothing stored yet: the empty state says what to do.
  browser.eval("document.getElementById('key').value = " + js_string(s.key) +
               "; document.getElementById('login-form').requestSubmit(); true");
  REQUIRE(browser.wait_until("document.body.dataset.state === 'ready'", kWait));
  CHECK(browser.eval("getComputedStyle(document.getElementById('empty-state')).display") != "none");
  CHECK(browser.eval("document.getElementById('empty-state').textContent.includes("
                     "'No events yet: run scripts/demo')") == true);
  CHECK(browser.eval("sessionStorage.getItem('agentburn.apiKey')") == s.key);
  CHECK(browser.eval("location.href") == s.url("/"));  // the key is never in the URL

  // Events arrive; the page shows what the API answers.
  const char* providers[] = {"anthropic", "openai", "e2b"};
  const char* models[] = {"claude-3.5-sonnet", "gpt-4o", "sandbox"};
  json batch = json::array();
  for (int i = 59; i >= 0; --i) {  // oldest first, as they would arrive
    json extra = {{"provider", providers[i % 3]},
                  {"model", models[i % 3]},
                  {"inputTokens", 1000 + i},
                  {"outputTokens", 200 + i}};
    // Spread over the last 20 days, one event per 8 hours.
    extra["timestamp"] = testing::iso_ms(testing::now_unix_ms() - i * 8 * 3600000LL);
    batch.push_back(make_event(i % 4 ? a : b, 0.75 + 0.5 * (i % 5) + 0.25 * (i % 3),
                               "e" + std::to_string(i), extra));
  }
  s.ingest_ok(batch);
  REQUIRE(
      s.post("/api/alerts",
             json({{"name", "monthly cap"}, {"budgetUsd", 50}, {"periodType", "monthly"}}).dump())
          .status == 201);
  REQUIRE(s.post("/api/alerts", json({{"name", "support daily"},
                                      {"agentId", a},
                                      {"budgetUsd", 500},
                                      {"periodType", "daily"}})
                                    .dump())
              .status == 201);
  json d = s.get("/api/dashboard").json();
  browser.eval("document.getElementById('by-day').click(); true");
  REQUIRE(
      browser.wait_until("document.getElementById('total-events').textContent === '60' && "
                         "document.body.dataset.state === 'ready'",
                         kWait));
  auto text = [&](const char* id) {
    return browser.eval(std::string("document.getElementById('") + id + "').textContent");
  };
  CHECK(text("total-today") == money(d["totalCostToday"].get<double>()));
  CHECK(text("total-week") == money(d["totalCostWeek"].get<double>()));
  CHECK(text("total-month") == money(d["totalCostMonth"].get<double>()));
  CHECK(text("change") == "n/a");  // nothing in the 30 days before
  CHECK(text("active-agents") == std::to_string(d["activeAgents"].get<int>()));
  CHECK(browser.eval("getComputedStyle(document.getElementById('empty-state')).display") == "none");
  // The charts: a bar per day with a cost, per provider, per model, per agent, per budget.
  int days_with_cost = static_cast<int>(d["costTimeSeries"].size());
  CHECK(browser.eval("[...document.querySelectorAll('#chart-time rect.bar')]"
                     ".filter(r => +r.getAttribute('height') > 0).length") == days_with_cost);
  CHECK(browser.eval("document.querySelectorAll('#chart-time rect.bar').length") == 30);
  CHECK(browser.eval("document.querySelectorAll('#by-provider rect.bar').length") == 3);
  CHECK(browser.eval("document.querySelectorAll('#by-model rect.bar').length") == 3);
  CHECK(browser.eval("document.querySelectorAll('#by-agent rect.bar').length") == 2);
  CHECK(browser.eval("document.querySelectorAll('#budgets rect.bar').length") == 2);
  CHECK(browser.eval("document.getElementById('budgets').textContent.includes("
                     "'monthly cap (monthly)')") == true);
  CHECK(browser.eval("document.querySelectorAll('#top-agents tr').length") == 3);
  CHECK(browser.eval("document.querySelector('#top-agents tr:nth-child(2) td').textContent") ==
        d["topAgents"][0]["name"]);
  CHECK(browser.eval("document.querySelectorAll('#events tr').length") == 16);  // 15 and a head
  CHECK(browser.eval("document.getElementById('by-provider').textContent.includes(" +
                     js_string(money(d["costByProvider"]["openai"].get<double>())) + ")") == true);

  REQUIRE(
      browser
          .call("Emulation.setDeviceMetricsOverride",
                {{"width", 1280}, {"height", 1500}, {"deviceScaleFactor", 1}, {"mobile", false}})
          .is_object());
  json shot = browser.call("Page.captureScreenshot", {{"format", "png"}});
  REQUIRE(shot.contains("data"));
  std::string png = base64_decode(shot["data"]);
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(png.size() > 20000);
  std::ofstream(AGENTBURN_SCREENSHOT, std::ios::binary) << png;
  MESSAGE("dashboard screenshot: " << AGENTBURN_SCREENSHOT);

  // By hour: the last 48 hours.
  browser.eval("document.getElementById('by-hour').click(); true");
  REQUIRE(
      browser.wait_until("document.querySelectorAll('#chart-time rect.bar').length === 48 && "
                         "document.body.dataset.state === 'ready'",
                         kWait));

  // A narrow window: nothing wider than the window (wide tables scroll in their own box).
  REQUIRE(browser
              .call("Emulation.setDeviceMetricsOverride",
                    {{"width", 380}, {"height", 900}, {"deviceScaleFactor", 1}, {"mobile", true}})
              .is_object());
  CHECK(browser.wait_until("document.documentElement.scrollWidth <= 380", kWait));

  auto errors = browser.console_errors();
  for (const auto& e : errors) MESSAGE(e);
  CHECK(errors.empty());
}

TEST_SUITE_END();
