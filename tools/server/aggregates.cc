#include "aggregates.hpp"

#include <rocksdb/merge_operator.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "event/codec.hpp"

namespace agentburn::server {

namespace {

constexpr std::size_t kTotalsBytes = 6 * 8;

void put_u64(std::string* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint64_t get_u64(std::string_view s) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

void put_text(std::string* out, std::string_view text) {
  std::size_t n = std::min<std::size_t>(text.size(), 0xFFFF);
  out->push_back(static_cast<char>(n >> 8));
  out->push_back(static_cast<char>(n & 0xFF));
  out->append(text.data(), n);
}

bool get_text(std::string_view* in, std::string* out) {
  if (in->size() < 2) return false;
  std::size_t n =
      (static_cast<unsigned char>((*in)[0]) << 8) | static_cast<unsigned char>((*in)[1]);
  if (in->size() < 2 + n) return false;
  out->assign(in->data() + 2, n);
  in->remove_prefix(2 + n);
  return true;
}

class TotalsMerge : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    Totals sum;
    if (existing && !decode_totals(existing->ToStringView(), &sum)) return false;
    Totals add;
    if (!decode_totals(value.ToStringView(), &add)) return false;
    sum.add(add);
    *new_value = encode_totals(sum);
    return true;
  }
  const char* Name() const override { return "agentburn.totals"; }
};

}  // namespace

bool facts_of_record(std::string_view record, EventFacts* out) {
  auto r = nlohmann::json::parse(record, nullptr, false);
  if (!r.is_object()) return false;
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = r.find(name);
    if (it == r.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto count = [&](const char* name) -> std::int64_t {
    auto it = r.find(name);
    return it != r.end() && it->is_number() ? it->get<std::int64_t>() : 0;
  };
  EventFacts f;
  f.agent_id = text("agentId").value_or("");
  f.provider = text("provider").value_or("");
  f.operation = text("operation").value_or("");
  f.model = text("model").value_or("unknown");
  f.task_id = text("taskId").value_or("unknown");
  auto cost = r.find("costUsd");
  f.totals.cost_nanos = cost != r.end() && cost->is_number() ? to_nanos(cost->get<double>()) : 0;
  f.totals.events = 1;
  f.totals.input_tokens = count("inputTokens");
  f.totals.output_tokens = count("outputTokens");
  auto md = r.find("metadata");
  std::optional<std::string> md_text;
  if (md != r.end() && md->is_object()) md_text = md->dump();
  f.totals.unpriced = says_unpriced(text("costSource"), md_text);
  if (!detail::parse_timestamp(text("timestamp").value_or(""), &f.totals.last_ms)) return false;
  *out = std::move(f);
  return true;
}

std::string hour_prefix(char kind, std::int64_t hour) {
  std::string key(1, kind);
  put_u64(&key, static_cast<std::uint64_t>(hour) ^ (1ull << 63));
  return key;
}

std::string agent_key(std::string_view agent_id, std::string_view provider) {
  std::string key(1, 'a');
  put_text(&key, agent_id);
  put_text(&key, provider);
  return key;
}

std::string cell_key(const EventFacts& f, char kind) {
  std::string key = hour_prefix(kind, f.hour());
  put_text(&key, f.agent_id);
  put_text(&key, f.provider);
  put_text(&key, f.operation);
  put_text(&key, kind == 't' ? f.task_id : f.model);
  return key;
}

bool decode_cell(std::string_view key, std::string_view value, Cell* out) {
  if (key.empty() || !decode_totals(value, &out->totals)) return false;
  out->kind = key[0];
  key.remove_prefix(1);
  if (out->kind == 'a') return get_text(&key, &out->agent_id) && get_text(&key, &out->provider);
  if (out->kind != 'c' && out->kind != 't') return false;
  if (key.size() < 8) return false;
  out->hour = static_cast<std::int64_t>(get_u64(key) ^ (1ull << 63));
  key.remove_prefix(8);
  return get_text(&key, &out->agent_id) && get_text(&key, &out->provider) &&
         get_text(&key, &out->operation) && get_text(&key, &out->name);
}

std::string encode_totals(const Totals& t) {
  std::string out;
  out.reserve(kTotalsBytes);
  for (std::int64_t v :
       {t.cost_nanos, t.events, t.input_tokens, t.output_tokens, t.unpriced, t.last_ms}) {
    put_u64(&out, static_cast<std::uint64_t>(v));
  }
  return out;
}

bool decode_totals(std::string_view v, Totals* out) {
  if (v.size() != kTotalsBytes) return false;
  std::int64_t* fields[] = {&out->cost_nanos,    &out->events,   &out->input_tokens,
                            &out->output_tokens, &out->unpriced, &out->last_ms};
  for (std::int64_t* f : fields) {
    *f = static_cast<std::int64_t>(get_u64(v));
    v.remove_prefix(8);
  }
  return true;
}

void count_event(const EventFacts& facts, PendingTotals* pending) {
  (*pending)[agent_key(facts.agent_id, facts.provider)].add(facts.totals);
  (*pending)[cell_key(facts, 'c')].add(facts.totals);
  (*pending)[cell_key(facts, 't')].add(facts.totals);
}

std::shared_ptr<rocksdb::MergeOperator> totals_merge_operator() {
  return std::make_shared<TotalsMerge>();
}

}  // namespace agentburn::server
