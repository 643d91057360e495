#include <agentburn/agentburn.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  agentburn::Options o;
  o.buffer_root = argv[1];
  auto c = agentburn::Client::open(o);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().to_string().c_str());
    return 1;
  }
  agentburn::Event e;
  e.agent_id = "consumer";
  e.provider = "openai";
  e.operation = "llm_call";
  e.cost_usd = 0.01;
  agentburn::Status s = c->track(e);
  std::printf("track: %s, pending %llu\n", s.to_string().c_str(),
              static_cast<unsigned long long>(c->stats().pending));
  return s.ok() && c->stats().pending == 1 ? 0 : 1;
}
