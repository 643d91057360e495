#include "ledger/rows.hpp"

#include <rocksdb/merge_operator.h>

#include <cmath>
#include <cstring>

namespace agentburn::ledger {

std::int64_t to_nanos(double usd) {
  if (!(usd > 0)) return 0;  // costs are validated non-negative; NaN is 0 too
  double n = std::round(usd * static_cast<double>(kNanosPerUsd));
  return n >= 9.2e18 ? INT64_C(9200000000000000000) : static_cast<std::int64_t>(n);
}

namespace {

void put_u16(std::size_t n, std::string* out) {
  out->push_back(static_cast<char>((n >> 8) & 0xff));
  out->push_back(static_cast<char>(n & 0xff));
}

void put_part(std::string_view s, std::string* out) {
  if (s.size() > 0xffff) s = s.substr(0, 0xffff);  // event strings are far shorter
  put_u16(s.size(), out);
  out->append(s);
}

bool get_part(std::string_view* in, std::string* out) {
  if (in->size() < 2) return false;
  std::size_t n = (static_cast<unsigned char>((*in)[0]) << 8) | static_cast<unsigned char>((*in)[1]);
  if (in->size() < 2 + n) return false;
  if (out) out->assign(in->substr(2, n));
  in->remove_prefix(2 + n);
  return true;
}

std::int64_t get_i64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<std::int64_t>(v);
}

void put_i64(std::int64_t x, std::string* out) {
  auto v = static_cast<std::uint64_t>(x);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

class AddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    Totals sum{}, add{};
    if (existing && !decode_value(std::string_view(existing->data(), existing->size()), &sum)) {
      return false;
    }
    if (!decode_value(std::string_view(value.data(), value.size()), &add)) return false;
    for (int i = 0; i < kFields; ++i) {
      sum[i] = static_cast<std::int64_t>(static_cast<std::uint64_t>(sum[i]) +
                                         static_cast<std::uint64_t>(add[i]));
    }
    *new_value = encode_value(sum);
    return true;
  }
  const char* Name() const override { return "agentburn.ledger_add"; }
};

}  // namespace

std::string encode_key(std::int64_t hour, std::string_view origin, const Dimensions& d) {
  std::string k;
  k.reserve(8 + 14 + origin.size() + d.agent_id.size() + d.provider.size() + d.model.size() +
            d.operation.size() + d.task_id.size() + d.workflow_id.size());
  auto h = static_cast<std::uint64_t>(hour);
  for (int i = 0; i < 8; ++i) k.push_back(static_cast<char>(h >> (56 - 8 * i)));
  put_part(origin, &k);
  for (auto part : {d.agent_id, d.provider, d.model, d.operation, d.task_id, d.workflow_id}) {
    put_part(part, &k);
  }
  return k;
}

bool decode_key(std::string_view key, Row* row) {
  if (key.size() < 8) return false;
  std::uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | static_cast<unsigned char>(key[i]);
  row->hour = static_cast<std::int64_t>(h);
  key.remove_prefix(8);
  for (std::string* part : {&row->origin, &row->agent_id, &row->provider, &row->model,
                            &row->operation, &row->task_id, &row->workflow_id}) {
    if (!get_part(&key, part)) return false;
  }
  return key.empty();
}

std::string_view origin_of(std::string_view key) {
  if (key.size() < 10) return {};
  std::string_view rest = key.substr(8);
  std::size_t n = (static_cast<unsigned char>(rest[0]) << 8) | static_cast<unsigned char>(rest[1]);
  if (rest.size() < 2 + n) return {};
  return rest.substr(2, n);
}

std::string with_origin(std::string_view key, std::string_view origin) {
  if (key.size() < 10) return "";
  std::string_view rest = key.substr(8);
  if (!get_part(&rest, nullptr)) return "";
  std::string k(key.substr(0, 8));
  put_part(origin, &k);
  k.append(rest);
  return k;
}

std::string encode_value(const Totals& t) {
  std::string v;
  v.reserve(8 * kFields);
  for (auto x : t) put_i64(x, &v);
  return v;
}

bool decode_value(std::string_view value, Totals* t) {
  if (value.size() % 8 != 0) return false;
  t->fill(0);
  std::size_t n = std::min<std::size_t>(value.size() / 8, kFields);
  for (std::size_t i = 0; i < n; ++i) (*t)[i] = get_i64(value.data() + 8 * i);
  return true;
}

std::shared_ptr<rocksdb::MergeOperator> merge_operator() {
  static const std::shared_ptr<rocksdb::MergeOperator> op = std::make_shared<AddOperator>();
  return op;
}

}  // namespace agentburn::ledger
