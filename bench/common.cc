#include "common.hpp"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <thread>

#include "agentburn/client.hpp"
#include "event/codec.hpp"

namespace bench {

namespace fs = std::filesystem;

void die(const std::string& message) {
  std::fprintf(stderr, "agentburn_bench: %s\n", message.c_str());
  std::fflush(stderr);
  std::exit(1);
}

Percentiles percentiles(std::vector<std::int64_t> v) {
  Percentiles p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    std::size_t i = static_cast<std::size_t>(q * static_cast<double>(v.size()));
    return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1000.0;
  };
  p.mean_us = static_cast<double>(std::accumulate(v.begin(), v.end(), std::int64_t{0})) /
              static_cast<double>(v.size()) / 1000.0;
  p.p50_us = at(0.50);
  p.p90_us = at(0.90);
  p.p99_us = at(0.99);
  p.p999_us = at(0.999);
  p.max_us = static_cast<double>(v.back()) / 1000.0;
  return p;
}

std::string make_temp_dir(const std::string& base, const std::string& prefix) {
  std::string tmpl = base + "/" + prefix + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) die("cannot create a folder under " + base + ": " + std::strerror(errno));
  return std::string(buf.data());
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::uint64_t tree_bytes(const std::string& path) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

void copy_tree(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) die("cannot copy " + from + ": " + ec.message());
}

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) return std::atol(line.c_str() + prefix.size());
  }
  return -1;
}

double cpu_seconds() {
  std::ifstream in("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::vector<std::string> f;
  std::string x;
  while (rest >> x) f.push_back(x);
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

namespace {

std::vector<std::string> task_dirs() {
  std::vector<std::string> out;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') out.push_back(std::string("/proc/self/task/") + e->d_name);
    }
    closedir(d);
  }
  return out;
}

}  // namespace

int thread_count() { return static_cast<int>(task_dirs().size()); }

std::uint64_t context_switches() {
  std::uint64_t total = 0;
  for (const auto& t : task_dirs()) {
    std::ifstream in(t + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10);
      }
    }
  }
  return total;
}

std::string thread_names() {
  std::map<std::string, int> names;
  for (const auto& t : task_dirs()) {
    std::ifstream in(t + "/comm");
    std::string name;
    std::getline(in, name);
    ++names[name];
  }
  std::string out;
  for (const auto& [name, n] : names) {
    if (!out.empty()) out += ", ";
    out += name + (n > 1 ? " x" + std::to_string(n) : "");
  }
  return out;
}

agentburn::Event sample_event(const std::string& agent_id) {
  agentburn::Event e;
  e.agent_id = agent_id;
  e.provider = "anthropic";
  e.model = "claude-3.5-sonnet";
  e.operation = "llm_call";
  e.input_tokens = 12500;
  e.output_tokens = 3200;
  e.cost_usd = 0.0855;
  e.task_id = "ticket-CTMS-5109";
  e.workflow_id = "sprint-42";
  return e;
}

std::string sample_event_json(const std::string& agent_id) {
  return "{\"agentId\":\"" + agent_id +
         "\",\"provider\":\"anthropic\",\"model\":\"claude-3.5-sonnet\",\"operation\":\"llm_call\","
         "\"inputTokens\":12500,\"outputTokens\":3200,\"costUsd\":0.0855,"
         "\"taskId\":\"ticket-CTMS-5109\",\"workflowId\":\"sprint-42\"}";
}

std::string stored_form(const agentburn::Event& e) {
  agentburn::detail::Normalized norm;
  agentburn::detail::FieldError err;
  if (!agentburn::detail::validate_event(e, true, false, &norm, &err)) die(err.message);
  std::string out;
  agentburn::detail::encode_event(e, norm, false, &out);
  return out;
}

Drain drain(const std::string& root, const std::string& url, const std::string& api_key, int slots) {
  Drain d;
  agentburn::Options o;
  o.buffer_root = root;
  o.endpoint = url;
  o.api_key = api_key;
  o.max_batches_in_flight = slots;
  auto t0 = Clock::now();
  auto client = agentburn::Client::open(o);
  if (!client.ok()) die("Client::open: " + client.status().to_string());
  d.open_s = seconds_since(t0);
  auto t1 = Clock::now();
  agentburn::Status s = client->flush(std::chrono::seconds(600));
  d.drain_s = seconds_since(t1);
  if (!s.ok()) die("flush: " + s.to_string());
  d.delivered = client->stats().delivered;
  s = client->close(std::chrono::seconds(10));
  if (!s.ok()) die("close: " + s.to_string());
  return d;
}

namespace {

rocksdb::Options buffer_like_options() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.write_buffer_size = 8 << 20;
  o.max_write_buffer_number = 2;
  o.max_open_files = 64;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 2;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.level_compaction_dynamic_level_bytes = true;
  return o;
}

}  // namespace

RawDb::RawDb(const std::string& path) {
  auto st = rocksdb::DB::Open(buffer_like_options(), path, &db_);
  if (!st.ok()) die("cannot open RocksDB in " + path + ": " + st.ToString());
}

RawDb::~RawDb() { delete db_; }

void RawDb::put(const std::string& value, bool sync) {
  char key[8];
  std::uint64_t s = seq_++;
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(s >> (56 - 8 * i));
  rocksdb::WriteOptions w;
  w.sync = sync;
  auto st = db_->Put(w, rocksdb::Slice(key, 8), value);
  if (!st.ok()) die("raw put failed: " + st.ToString());
}

void flush_and_compact_buffer_folder(const std::string& folder) {
  rocksdb::Options o = buffer_like_options();
  o.create_if_missing = false;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, o}, {"dead", o}, {"meta", o}, {"ledger", o}};
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  rocksdb::DB* db = nullptr;
  auto st = rocksdb::DB::Open(o, folder, cfs, &h, &db);
  if (!st.ok()) die("cannot open " + folder + ": " + st.ToString());
  for (auto* cf : h) {
    st = db->Flush(rocksdb::FlushOptions(), cf);
    if (!st.ok()) die("flush failed: " + st.ToString());
  }
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : h) {
    st = db->CompactRange(co, cf, nullptr, nullptr);
    if (!st.ok()) die("compaction failed: " + st.ToString());
  }
  for (auto* cf : h) db->DestroyColumnFamilyHandle(cf);
  db->Close();
  delete db;
}

// --- Child processes -----------------------------------------------------------------------

namespace {

[[noreturn]] void exec_child(std::vector<std::string> args, int out_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (out_fd >= 0) dup2(out_fd, 1);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

bool wait_pid(pid_t pid, Clock::time_point deadline, int* status) {
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

Server::Server(const std::string& binary, const std::string& data_dir, const std::string& api_key,
               const std::vector<std::string>& extra_args) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) die("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<std::string> args = {binary,   "--listen", "127.0.0.1:0",
                                     "--data", data_dir,   "--api-key",
                                     api_key,  "--quiet",  "--enable-fault-injection"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    exec_child(args, out[1]);
  }
  close(out[1]);
  if (pid < 0) die("fork failed");
  pid_ = pid;
  out_fd_ = out[0];
  std::string seen;
  const std::string marker = "listening on ";
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto pos = seen.find(marker);
    auto eol = pos == std::string::npos ? pos : seen.find('\n', pos);
    if (eol != std::string::npos) {
      url_ = seen.substr(pos + marker.size(), eol - pos - marker.size());
      return;
    }
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd pfd = {out_fd_, POLLIN, 0};
    int n = poll(&pfd, 1, std::max(left, 0));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) die("agentburn-server printed no \"listening on\" line in 30 s");
    char buf[512];
    ssize_t got = read(out_fd_, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) die("agentburn-server exited before listening: " + seen);
    seen.append(buf, static_cast<std::size_t>(got));
  }
}

Server::~Server() { stop(); }

void Server::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  if (!wait_pid(pid_, Clock::now() + std::chrono::seconds(20), &status)) {
    kill(pid_, SIGKILL);
    wait_pid(pid_, Clock::time_point::max(), &status);
  }
  close(out_fd_);
  pid_ = -1;
}

std::string run_capture(const std::vector<std::string>& args, int timeout_s) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) die("pipe failed");
  pid_t pid = fork();
  if (pid == 0) exec_child(args, out[1]);
  close(out[1]);
  if (pid < 0) die("fork failed");
  std::string text;
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      kill(pid, SIGKILL);
      int st = 0;
      wait_pid(pid, Clock::time_point::max(), &st);
      die(args[0] + " " + (args.size() > 1 ? args[1] : "") + " ran past " +
          std::to_string(timeout_s) + " s");
    }
    pollfd pfd = {out[0], POLLIN, 0};
    int n = poll(&pfd, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) continue;
    char buf[4096];
    ssize_t got = read(out[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buf, static_cast<std::size_t>(got));
  }
  close(out[0]);
  int status = 0;
  wait_pid(pid, Clock::time_point::max(), &status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    die(args[0] + " " + (args.size() > 1 ? args[1] : "") + " failed; it printed: " + text);
  }
  return text;
}

// --- HTTP ------------------------------------------------------------------------------------

namespace {

std::size_t collect(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

long http(const std::string& url, const std::string* post_body, const std::string& api_key,
          std::string* answer) {
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!api_key.empty()) headers = curl_slist_append(headers, ("x-api-key: " + api_key).c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (post_body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return status;
}

}  // namespace

std::string register_agent(const std::string& url, const std::string& name) {
  std::string body = "{\"name\":\"" + name + "\",\"projectId\":\"bench\"}", answer;
  long status = http(url + "/api/agents", &body, "", &answer);
  if (status != 201 && status != 200) {
    die("POST /api/agents answered " + std::to_string(status) + ": " + answer);
  }
  return nlohmann::json::parse(answer).at("id").get<std::string>();
}

std::string http_get(const std::string& url, const std::string& api_key) {
  std::string answer;
  long status = http(url, nullptr, api_key, &answer);
  if (status != 200) die("GET " + url + " answered " + std::to_string(status) + ": " + answer);
  return answer;
}

std::uint64_t server_events_stored(const std::string& url, const std::string& api_key) {
  return nlohmann::json::parse(http_get(url + "/api/_stats", api_key))
      .at("events_stored")
      .get<std::uint64_t>();
}

}  // namespace bench
