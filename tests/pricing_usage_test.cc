// Usage read from provider responses (tests/fixtures/responses/), streamed and not, and the
// bodies that must be refused.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "pricing/cost.hpp"
#include "pricing/usage.hpp"

using namespace agentburn::pricing;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(AGENTBURN_TEST_FIXTURES) + "/responses/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Usage read_ok(const std::string& name, const char* provider = "") {
  auto u = usage_from_response(provider, fixture(name));
  INFO(name << ": " << u.status().message());
  REQUIRE(u.ok());
  return u.value();
}

std::string read_error(const std::string& body, const char* provider = "") {
  auto u = usage_from_response(provider, body);
  REQUIRE_FALSE(u.ok());
  CHECK(u.status().code() == agentburn::Status::Code::kInvalid);
  return u.status().message();
}

void check_tokens(const Tokens& t, uint64_t input, uint64_t cached, uint64_t cache_write,
                  uint64_t output, uint64_t reasoning) {
  CHECK(t.input == input);
  CHECK(t.cached == cached);
  CHECK(t.cache_write == cache_write);
  CHECK(t.output == output);
  CHECK(t.reasoning == reasoning);
}

}  // namespace

TEST_SUITE("pricing.usage") {
  TEST_CASE("OpenAI Chat Completions and compatible APIs") {
    Usage u = read_ok("openai_chat.json");
    CHECK(u.shape == ResponseShape::kOpenAIChat);
    CHECK(u.model == "gpt-4o-2024-08-06");
    CHECK(u.provider == "openai");
    CHECK_FALSE(u.streamed);
    check_tokens(u.tokens, 1117, 1024, 0, 46, 0);
    u = read_ok("openai_chat_o3.json", "azure");
    CHECK(u.provider == "azure");
    CHECK(u.model == "o3-2025-04-16");
    check_tokens(u.tokens, 2500, 1280, 0, 1800, 1536);
    u = read_ok("deepseek_chat.json", "deepseek");
    check_tokens(u.tokens, 16, 8, 0, 10, 0);
  }

  TEST_CASE("OpenAI Responses") {
    Usage u = read_ok("openai_responses.json");
    CHECK(u.shape == ResponseShape::kOpenAIResponses);
    CHECK(u.model == "gpt-5-2025-08-07");
    check_tokens(u.tokens, 328, 128, 0, 552, 512);
  }

  TEST_CASE("Anthropic Messages: its input leaves the cache out") {
    Usage u = read_ok("anthropic_messages.json");
    CHECK(u.shape == ResponseShape::kAnthropicMessages);
    CHECK(u.provider == "anthropic");
    CHECK(u.model == "claude-sonnet-4-5-20250929");
    check_tokens(u.tokens, 2095 + 80000 + 10000, 80000, 10000, 503, 0);
    CHECK(u.tokens.cache_write_1h == 4000);
    // Priced end to end: 2095 x 3 + 80000 x 0.30 + 6000 x 3.75 + 4000 x 6 + 503 x 15.
    auto c = estimate(Catalog::builtin(), u.provider, u.model, u.tokens);
    REQUIRE(c.ok());
    CHECK(c->key == "claude-sonnet-4-5-20250929");
    CHECK(c->total_usd == doctest::Approx(0.08433).epsilon(1e-12));
  }

  TEST_CASE("Gemini") {
    Usage u = read_ok("gemini.json", "google");
    CHECK(u.shape == ResponseShape::kGemini);
    CHECK(u.model == "gemini-2.5-pro");
    check_tokens(u.tokens, 100000, 20000, 0, 2000 + 3000, 3000);
    // 80000 x 1.25 + 20000 x 0.125 + 2000 x 10 + 3000 x 10
    auto c = estimate(Catalog::builtin(), u.provider, u.model, u.tokens);
    REQUIRE(c.ok());
    CHECK(c->total_usd == doctest::Approx(0.1525).epsilon(1e-12));
  }

  TEST_CASE("streams: the usage each provider sends last") {
    Usage u = read_ok("openai_chat_stream.sse");
    CHECK(u.streamed);
    CHECK(u.shape == ResponseShape::kOpenAIChat);
    CHECK(u.model == "gpt-4o-mini-2024-07-18");
    check_tokens(u.tokens, 2048, 1920, 0, 120, 0);
    u = read_ok("openai_responses_stream.sse");
    CHECK(u.shape == ResponseShape::kOpenAIResponses);
    CHECK(u.model == "gpt-4.1-2025-04-14");
    check_tokens(u.tokens, 37, 0, 0, 11, 0);
    u = read_ok("anthropic_stream.sse");
    CHECK(u.shape == ResponseShape::kAnthropicMessages);
    CHECK(u.model == "claude-haiku-4-5-20251001");
    check_tokens(u.tokens, 25 + 5000 + 2000, 5000, 2000, 1000, 0);
    u = read_ok("gemini_stream.sse");
    CHECK(u.shape == ResponseShape::kGemini);
    CHECK(u.model == "gemini-2.5-flash");
    check_tokens(u.tokens, 10000, 0, 0, 5000, 4000);
    u = read_ok("gemini_stream_array.json");
    CHECK(u.streamed);
    check_tokens(u.tokens, 10000, 0, 0, 5000, 4000);
    // CRLF line ends, a comment line and data split over two lines.
    std::string crlf = "event: message_start\r\n: keep-alive\r\ndata: " +
                       std::string(R"({"type":"message_start","message":{"model":"claude-x",)") +
                       "\r\ndata: " + R"("usage":{"input_tokens":5,"output_tokens":1}}})" +
                       "\r\n\r\ndata: " + R"({"type":"message_delta","usage":{"output_tokens":9}})";
    auto c = usage_from_response("anthropic", crlf);
    REQUIRE(c.ok());
    check_tokens(c->tokens, 5, 0, 0, 9, 0);
    CHECK(c->model == "claude-x");
  }

  TEST_CASE("a stream cut before its usage is an error, not zeros") {
    CHECK(read_error(fixture("openai_chat_stream_cut.sse")).find(
              "an OpenAI chat stream without its usage chunk") == 0);
    CHECK(read_error(fixture("openai_responses_stream_cut.sse")).find(
              "a Responses stream cut before its response.completed") == 0);
    CHECK(read_error(fixture("anthropic_stream_cut.sse")).find(
              "an Anthropic stream cut before its message_delta") == 0);
    CHECK(read_error(fixture("gemini_stream_cut.sse")).find(
              "a Gemini stream cut before its last chunk") == 0);
    CHECK(read_error(fixture("anthropic_stream_error.sse")) ==
          "the stream reported an error: Overloaded");
    const std::string half = fixture("openai_chat_stream.sse").substr(0, 900);
    CHECK(read_error(half).find("stream event ") == 0);  // an event's JSON cut in two
    CHECK(read_error("data: [DONE]\n\n").find("a stream with no event from") == 0);
  }

  TEST_CASE("what is not an answer is refused, saying what was expected") {
    CHECK(read_error(fixture("openai_error.json")).find(
              "the body is an error response, not an answer: Incorrect API key") == 0);
    CHECK(read_error(fixture("anthropic_error.json")) ==
          "the body is an error response, not an answer: Overloaded");
    CHECK(read_error(fixture("openai_chat_truncated.json")).find(
              "the response body is not valid JSON (invalid JSON at byte") == 0);
    CHECK(read_error("").find("the response body is empty; expected a response from OpenAI") == 0);
    CHECK(read_error("<html>502 Bad Gateway</html>").find(
              "expected a JSON response body or an SSE stream from OpenAI") == 0);
    CHECK(read_error(R"({"id":"x","object":"chat.completion","choices":[]})") ==
          "an OpenAI chat completion without usage.prompt_tokens and usage.completion_tokens");
    CHECK(read_error(R"({"hello":"world"})").find("this JSON has none of their fields") !=
          std::string::npos);
    CHECK(read_error(R"({"object":"chat.completion","usage":{"prompt_tokens":-3,"completion_tokens":1}})") ==
          "the response's usage.prompt_tokens: must be a whole number of tokens from 0 to 10^12, got -3");
    CHECK(read_error(R"({"object":"chat.completion","usage":{"prompt_tokens":"3","completion_tokens":1}})")
              .find("got \"3\"") != std::string::npos);
    CHECK(read_error(R"({"object":"chat.completion","usage":{"prompt_tokens":1.5,"completion_tokens":1}})")
              .find("got 1.5") != std::string::npos);
    CHECK(read_error(R"({"object":"chat.completion","usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":11}}})")
              .find("the response's usage does not add up: cached + cache_write (11) must not "
                    "exceed input (10)") == 0);
    CHECK(read_error(R"({"usageMetadata":{"promptTokenCount":1e400}})").find("got 1e400") !=
          std::string::npos);
    CHECK(read_error(R"([1,2,3])").find("not a Gemini stream") != std::string::npos);
    CHECK(read_error("{\"a\":\"\x01\"}").find("not valid JSON") != std::string::npos);
    CHECK(read_error("{\"a\":1} {\"b\":2}").find("more text after the JSON value") !=
          std::string::npos);
  }

  TEST_CASE("bounded: huge bodies and deep JSON") {
    CHECK(read_error(std::string((16u << 20) + 1, ' ')).find("more than the 16 MiB limit") !=
          std::string::npos);
    const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    CHECK(read_error(deep).find("nested more than 64 levels deep") != std::string::npos);
    const std::string deep_sse = "data: " + std::string(1000, '[') + "\n\n";
    CHECK(read_error(deep_sse).find("nested more than 64 levels deep") != std::string::npos);
  }
}
