#include "store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <unordered_map>

#include "event/codec.hpp"

namespace agentburn::server {

namespace {

constexpr int kFormatVersion = 1;

std::string big_endian(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

std::uint64_t from_big_endian(std::string_view s) {
  std::uint64_t v = 0;
  for (unsigned char c : s.substr(0, 8)) v = (v << 8) | c;
  return v;
}

Status storage_error(const std::string& what, const rocksdb::Status& s) {
  return Status::storage(what + ": " + s.ToString());
}

}  // namespace

Status Store::open(const std::string& dir, std::unique_ptr<Store>* out, bool aggregates) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::storage("cannot create " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::storage(dir + " is not a folder");
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_open_files = 512;
  rocksdb::ColumnFamilyOptions cf_options;
  // The deduplication index is read once per event ingested, almost always for a key it does
  // not hold: bloom filters (on its tables and its memtable) answer those without a read.
  rocksdb::ColumnFamilyOptions keys_options;
  rocksdb::BlockBasedTableOptions keys_table;
  keys_table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  keys_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(keys_table));
  keys_options.memtable_prefix_bloom_size_ratio = 0.1;
  keys_options.memtable_whole_key_filtering = true;
  rocksdb::ColumnFamilyOptions aggregates_options;
  aggregates_options.merge_operator = totals_merge_operator();
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {"agents", cf_options},
      {"events", cf_options},
      {"keys", keys_options},
      {"agent_order", cf_options},
      {"aggregates", aggregates_options},
      {"alerts", cf_options}};

  std::unique_ptr<Store> store(new Store());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, families, &store->handles_, &raw);
  if (!s.ok() && s.IsIOError() && s.ToString().find("lock") != std::string::npos &&
      s.ToString().find("Resource temporarily unavailable") != std::string::npos) {
    // RocksDB's LOCK is held: another server (or a tool) has this folder open.
    return Status::storage("another agentburn-server is using " + dir +
                           " (its database is locked); one server per data folder");
  }
  if (!s.ok()) return storage_error("cannot open the database in " + dir, s);
  store->db_.reset(raw);
  store->meta_ = store->handles_[0];
  store->agents_ = store->handles_[1];
  store->events_ = store->handles_[2];
  store->keys_ = store->handles_[3];
  store->agent_order_ = store->handles_[4];
  store->aggregates_cf_ = store->handles_[5];
  store->alerts_ = store->handles_[6];
  store->aggregates_ = aggregates;

  std::string version;
  s = raw->Get(rocksdb::ReadOptions(), store->meta_, "format_version", &version);
  if (s.IsNotFound()) {
    s = raw->Put(rocksdb::WriteOptions(), store->meta_, "format_version",
                 std::to_string(kFormatVersion));
    if (!s.ok()) return storage_error("cannot write to " + dir, s);
  } else if (!s.ok()) {
    return storage_error("cannot read " + dir, s);
  } else if (version != std::to_string(kFormatVersion)) {
    return Status::storage(dir + " holds data of format version " + version +
                           ", which this server does not read");
  }

  for (auto [family, next] : {std::pair{store->events_, &store->next_seq_},
                              std::pair{store->agent_order_, &store->next_agent_}}) {
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), family));
    it->SeekToLast();
    if (it->Valid()) *next = from_big_endian(it->key().ToStringView()) + 1;
    if (!it->status().ok()) return storage_error("cannot read " + dir, it->status());
  }
  std::string complete;
  s = raw->Get(rocksdb::ReadOptions(), store->meta_, "aggregates", &complete);
  if (!s.ok() && !s.IsNotFound()) return storage_error("cannot read " + dir, s);
  if (!aggregates && s.ok()) {
    // Events stored from now on are not counted: the next run with aggregates rebuilds them.
    s = raw->Delete(rocksdb::WriteOptions(), store->meta_, "aggregates");
    if (!s.ok()) return storage_error("cannot write to " + dir, s);
  } else if (aggregates && s.IsNotFound()) {
    Status rebuilt = store->rebuild_aggregates();
    if (!rebuilt.ok()) return rebuilt;
  }
  if (aggregates) {
    Status loaded = store->load_cached_aggregates();
    if (!loaded.ok()) return loaded;
  }
  *out = std::move(store);
  return Status();
}

Status Store::rebuild_aggregates() {
  // Whatever an earlier rebuild (killed midway) or run left is dropped first.
  std::unique_ptr<rocksdb::Iterator> old(db_->NewIterator(rocksdb::ReadOptions(), aggregates_cf_));
  rocksdb::WriteBatch batch;
  for (old->SeekToFirst(); old->Valid(); old->Next()) batch.Delete(aggregates_cf_, old->key());
  if (!old->status().ok()) return storage_error("cannot read the aggregates", old->status());
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return storage_error("cannot rebuild the aggregates", s);
  PendingTotals pending;
  std::size_t counted = 0;
  auto flush = [&] {
    rocksdb::WriteBatch sums;
    for (const auto& [key, totals] : pending) {
      if (stored_kind(key[0])) sums.Merge(aggregates_cf_, key, encode_totals(totals));
    }
    pending.clear();
    return db_->Write(rocksdb::WriteOptions(), &sums);
  };
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EventFacts facts;
    if (!facts_of_record(it->value().ToStringView(), &facts)) continue;
    count_event(facts, &pending);
    if (++counted % 50000 == 0 && !(s = flush()).ok()) {
      return storage_error("cannot rebuild the aggregates", s);
    }
  }
  if (!it->status().ok()) return storage_error("cannot read the events", it->status());
  if (!(s = flush()).ok()) return storage_error("cannot rebuild the aggregates", s);
  s = db_->Put(rocksdb::WriteOptions(), meta_, "aggregates", "1");
  return s.ok() ? Status() : storage_error("cannot rebuild the aggregates", s);
}

Status Store::load_cached_aggregates() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), aggregates_cf_));
  Cell cell;
  for (it->Seek(hour_prefix('c', INT64_MIN)); it->Valid() && it->key()[0] == 'c'; it->Next()) {
    std::string_view key = it->key().ToStringView();
    if (!decode_cell(key, it->value().ToStringView(), &cell)) continue;
    cached_.emplace(std::string(key), cell.totals);
    cached_[agent_key(cell.agent_id, cell.provider)].add(cell.totals);
  }
  return it->status().ok() ? Status() : storage_error("cannot read the aggregates", it->status());
}

Store::~Store() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close().PermitUncheckedError();
}

Status Store::put_agent(const std::string& id, const std::string& record_json) {
  std::lock_guard<std::mutex> lock(agents_mu_);
  rocksdb::WriteBatch batch;
  batch.Put(agents_, id, record_json);
  batch.Put(agent_order_, big_endian(next_agent_), id);
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return storage_error("cannot store the agent", s);
  ++next_agent_;
  return Status();
}

bool Store::has_agent(const std::string& id) {
  rocksdb::PinnableSlice value;
  return db_->Get(rocksdb::ReadOptions(), agents_, id, &value).ok();
}

Status Store::list_agents(std::vector<std::string>* records) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), agent_order_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string record;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), agents_, it->value(), &record);
    if (!s.ok()) return storage_error("cannot read the agents", s);
    records->push_back(std::move(record));
  }
  return it->status().ok() ? Status() : storage_error("cannot read the agents", it->status());
}

Status Store::ingest(const std::vector<IncomingEvent>& events, bool deduplicate,
                     IngestOutcome* out) {
  const std::string received_at = detail::format_timestamp_ms(detail::now_unix_ms());
  const std::size_t n = events.size();
  // first[j]: the index of the first event of the batch with event j's key (j when it is the
  // first); the first of each key is looked up in the store, all of them in one MultiGet.
  std::vector<std::size_t> first;
  std::vector<rocksdb::Slice> lookup;  // the keys of the first events, in order
  if (deduplicate) {
    first.resize(n);
    lookup.reserve(n);
    std::unordered_map<std::string_view, std::size_t> in_batch;
    in_batch.reserve(n);
    for (std::size_t j = 0; j < n; ++j) {
      auto [it, fresh] = in_batch.emplace(events[j].idempotency_key, j);
      first[j] = it->second;
      if (fresh) lookup.emplace_back(events[j].idempotency_key);
    }
  }
  std::vector<rocksdb::PinnableSlice> found(lookup.size());
  std::vector<rocksdb::Status> statuses(lookup.size());

  std::lock_guard<std::mutex> lock(ingest_mu_);
  if (!lookup.empty()) {
    db_->MultiGet(rocksdb::ReadOptions(), keys_, lookup.size(), lookup.data(), found.data(),
                  statuses.data());
  }
  rocksdb::WriteBatch batch;
  std::uint64_t seq = next_seq_;
  IngestOutcome result;
  result.ids.reserve(n);
  std::string record;
  PendingTotals pending;
  char seq_key[8];
  std::size_t looked_up = 0;  // the lookups consumed so far
  for (std::size_t j = 0; j < n; ++j) {
    const IncomingEvent& e = events[j];
    if (deduplicate) {
      if (first[j] != j) {  // a key seen earlier in the batch: that event's id
        result.ids.push_back(result.ids[first[j]]);
        ++result.duplicates;
        continue;
      }
      const rocksdb::Status& s = statuses[looked_up];
      const rocksdb::PinnableSlice& existing = found[looked_up];
      ++looked_up;
      if (s.ok()) {
        result.ids.emplace_back(existing.data(), existing.size());
        ++result.duplicates;
        continue;
      }
      if (!s.IsNotFound()) return storage_error("cannot read the deduplication index", s);
    }
    std::string id = "evt_" + detail::new_uuid_v7();
    // {"id":"evt_...","receivedAt":"...", then the wire form after its '{'.
    record.clear();
    record.reserve(received_at.size() + id.size() + e.wire.size() + 24);
    record.append("{\"id\":\"").append(id).append("\",\"receivedAt\":\"").append(received_at);
    record.append("\",").append(e.wire, 1, std::string::npos);
    std::uint64_t v = seq++;
    for (int i = 7; i >= 0; --i, v >>= 8) seq_key[i] = static_cast<char>(v & 0xFF);
    batch.Put(events_, rocksdb::Slice(seq_key, sizeof seq_key), record);
    if (deduplicate) batch.Put(keys_, e.idempotency_key, id);
    if (aggregates_) count_event(e.facts, &pending);
    result.ids.push_back(std::move(id));
    ++result.stored;
  }
  for (const auto& [key, totals] : pending) {
    if (stored_kind(key[0])) batch.Merge(aggregates_cf_, key, encode_totals(totals));
  }
  if (result.stored > 0) {
    rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!s.ok()) return storage_error("cannot store the events", s);
  }
  next_seq_ = seq;
  if (!pending.empty()) {
    std::unique_lock<std::shared_mutex> cache_lock(cached_mu_);
    for (const auto& [key, totals] : pending) {
      if (cached_kind(key[0])) cached_[key].add(totals);
    }
  }
  *out = std::move(result);
  return Status();
}

Status Store::scan_newest_first(const std::function<bool(std::string_view record)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    if (!visit(it->value().ToStringView())) break;
  }
  return it->status().ok() ? Status() : storage_error("cannot read the events", it->status());
}

Status Store::scan_before(
    std::uint64_t before,
    const std::function<bool(std::uint64_t seq, std::string_view record)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_));
  it->SeekForPrev(big_endian(before - 1));
  for (; before > 0 && it->Valid(); it->Prev()) {
    if (!visit(from_big_endian(it->key().ToStringView()), it->value().ToStringView())) break;
  }
  return it->status().ok() ? Status() : storage_error("cannot read the events", it->status());
}

Status Store::scan_aggregates(
    const std::string& from,
    const std::function<bool(std::string_view key, std::string_view value)>& visit) {
  if (cached_kind(from[0])) {
    std::shared_lock<std::shared_mutex> lock(cached_mu_);
    for (auto it = cached_.lower_bound(from); it != cached_.end() && it->first[0] == from[0];
         ++it) {
      if (!visit(it->first, encode_totals(it->second))) break;
    }
    return Status();
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), aggregates_cf_));
  for (it->Seek(from); it->Valid() && it->key()[0] == from[0]; it->Next()) {
    if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  return it->status().ok() ? Status() : storage_error("cannot read the aggregates", it->status());
}

Status Store::put_alert(const std::string& id, const std::string& record_json) {
  rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), alerts_, id, record_json);
  return s.ok() ? Status() : storage_error("cannot store the alert", s);
}

Status Store::delete_alert(const std::string& id, bool* found) {
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), alerts_, id, &value);
  *found = s.ok();
  if (s.IsNotFound()) return Status();
  if (s.ok()) s = db_->Delete(rocksdb::WriteOptions(), alerts_, id);
  return s.ok() ? Status() : storage_error("cannot delete the alert", s);
}

Status Store::list_alerts(std::vector<std::string>* records) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), alerts_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) records->push_back(it->value().ToString());
  return it->status().ok() ? Status() : storage_error("cannot read the alerts", it->status());
}

}  // namespace agentburn::server
