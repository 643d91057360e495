// The buffer's shared pieces: key and dead-letter encodings, RocksDB options.
#include "store/buffer_internal.hpp"

#include "store/fork_safety.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/table.h>

#include <cstdarg>
#include <cstdio>
#include <functional>

namespace agentburn::detail {

namespace {
// RocksDB's diagnostics go to the client's log callback (errors only) instead of a LOG file
// in the buffer folder: a LOG file costs disk, and after a failed write to it (a full disk)
// Debian's RocksDB asserts on the next line it logs, which would abort the host process.
class ForwardingLogger : public rocksdb::Logger {
 public:
  explicit ForwardingLogger(LogCallback log)
      : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL), log_(std::move(log)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::ERROR_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!log_ || level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    outside_fork_section([log = log_, text = std::string("rocksdb: ") + buf] {
      log(LogLevel::kError, text);
    });
  }

 private:
  LogCallback log_;
};

}  // namespace

std::uint64_t decode_seq(const rocksdb::Slice& s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  }
  return v;
}

std::string encode_dead(std::string_view event, std::string_view reason) {
  std::string out(4, '\0');
  auto n = static_cast<std::uint32_t>(event.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(n >> (8 * i));
  out.append(event);
  out.append(reason);
  return out;
}

bool decode_dead(const rocksdb::Slice& v, std::string* event, std::string* reason) {
  if (v.size() < 4) return false;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(v[i])) << (8 * i);
  if (n > v.size() - 4) return false;
  event->assign(v.data() + 4, n);
  reason->assign(v.data() + 4 + n, v.size() - 4 - n);
  return true;
}

DeadId dead_id(std::string_view event_json) {
  std::uint64_t fnv = 1469598103934665603ull;
  for (unsigned char c : event_json) fnv = (fnv ^ c) * 1099511628211ull;
  return {std::hash<std::string_view>()(event_json), fnv};
}

rocksdb::Options db_options(bool create, rocksdb::Env* env, const LogCallback& log) {
  rocksdb::Options o;
  o.env = env;
  o.info_log = std::make_shared<ForwardingLogger>(log);
  o.create_if_missing = create;
  // Also when adopting: a process killed while RocksDB created its column families leaves a
  // database without them, which holds no event and must not block the root.
  o.create_missing_column_families = true;
  o.error_if_exists = false;
  // Small and quiet: an embedded buffer must not cost its host much memory or disk.
  o.write_buffer_size = 8 << 20;
  o.max_write_buffer_number = 2;
  o.max_open_files = 64;
  o.max_background_jobs = 2;
  // Statistics go to no log here: no periodic dump (nor its timer thread) to produce them.
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  o.max_total_wal_size = 64 << 20;  // flush the small column families so WALs are recycled
  // No preallocated WAL space (about 9 MB a file): a buffer takes what it holds, and a
  // nearly full disk still takes events.
  o.allow_fallocate = false;
  // A torn last record (a write cut by a crash) is dropped; damage before it is an error,
  // not a silent end of the log with every later event gone.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(4 << 20);
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

rocksdb::WriteOptions write_options(Durability d) {
  rocksdb::WriteOptions w;
  w.sync = d == Durability::kSystem;
  return w;
}

}  // namespace agentburn::detail
