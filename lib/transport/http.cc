#include "transport/http.hpp"

#include "store/fork_safety.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <zlib.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <mutex>

#include "agentburn/version.h"

namespace agentburn::detail {

namespace {

constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

void global_init() {
  static std::once_flag once;
  // Never paired with curl_global_cleanup: other code in the host process may use libcurl.
  std::call_once(once, [] {
    // A fork() during it would leave the child's call_once (and TLS set-up) half done.
    ForkSection section;
    curl_global_init(CURL_GLOBAL_DEFAULT);
  });
}

bool gzip_compress(const std::string& in, std::string* out) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return false;
  }
  out->resize(deflateBound(&zs, in.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs, Z_FINISH);
  out->resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// localhost, 127.0.0.0/8 written as an IPv4 address, or the IPv6 loopback: nothing that
// merely starts with "127." (127.example.com is a name anyone can own).
bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "localhost.") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    in6_addr a6;
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) != 1) return false;
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 &&
         (ntohl(a4.s_addr) >> 24) == 127;
}

}  // namespace

struct Transport::Slot {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  std::string url;
  HttpResult result;
  std::uint64_t tag = 0;
  bool busy = false;
  const std::atomic<bool>* abort = nullptr;
  char error_detail[CURL_ERROR_SIZE] = {0};  // libcurl's own words on a failure

  static std::size_t on_body(char* p, std::size_t size, std::size_t n, void* self) {
    auto* s = static_cast<Slot*>(self);
    std::size_t len = size * n;
    std::size_t room = kMaxAnswerBytes - std::min(kMaxAnswerBytes, s->result.body.size());
    s->result.body.append(p, std::min(len, room));
    return len;
  }

  static std::size_t on_header(char* p, std::size_t size, std::size_t n, void* self) {
    auto* s = static_cast<Slot*>(self);
    std::string line(p, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos && lower(line.substr(0, colon)) == "retry-after") {
      std::string value = line.substr(colon + 1);
      auto b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t\r\n");
      if (b != std::string::npos) s->result.retry_after_ms = parse_retry_after(value.substr(b, e - b + 1));
    }
    return size * n;
  }

  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* s = static_cast<Slot*>(self);
    return s->abort && s->abort->load() ? 1 : 0;
  }

  explicit Slot(const TransportConfig& c) {
    easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(c.connect_timeout_ms));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(c.request_timeout_ms));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Slot::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Slot::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &Slot::on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_detail);
    // No Accept-Encoding: answers are small acks the sender hardly reads, and a server that
    // compresses them (cpp-httplib picks brotli) spent three quarters of its time doing so.
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "agentburn/" AB_VERSION_STRING);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    // TLS verification stays on (libcurl's default); a CA bundle replaces the system's.
    if (!c.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, c.ca_bundle.c_str());
    // Without an explicit proxy, libcurl reads http_proxy/https_proxy/no_proxy itself, except
    // on a direct route, where "" tells it to use no proxy at all.
    if (!c.proxy.empty()) {
      curl_easy_setopt(easy, CURLOPT_PROXY, c.proxy.c_str());
    } else if (c.direct) {
      curl_easy_setopt(easy, CURLOPT_PROXY, "");
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!c.api_key.empty()) {
      headers = curl_slist_append(headers, ("x-api-key: " + c.api_key).c_str());
      headers = curl_slist_append(headers, ("Authorization: Bearer " + c.api_key).c_str());
    }
    if (c.gzip) headers = curl_slist_append(headers, "Content-Encoding: gzip");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  }

  ~Slot() {
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }

  void prepare(const TransportConfig& c, const std::string& path, std::string payload) {
    result = HttpResult();
    error_detail[0] = '\0';
    if (c.gzip) {
      std::string packed;
      if (gzip_compress(payload, &packed)) body.swap(packed);
      else body.swap(payload);
    } else {
      body.swap(payload);
    }
    url = c.endpoint + path;
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
  }

  void finish(CURLcode rc) {
    if (rc == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &result.status);
      return;
    }
    result.status = 0;
    // The detail names the host and port, and the TLS library's reason; never a header.
    result.error = rc == CURLE_ABORTED_BY_CALLBACK ? "aborted"
                   : error_detail[0]              ? curl_easy_strerror(rc) + std::string(": ") + error_detail
                                                  : std::string(curl_easy_strerror(rc));
    result.tls_failed = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                        rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
                        rc == CURLE_SSL_CIPHER || rc == CURLE_SSL_ENGINE_NOTFOUND ||
                        rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_CRL_BADFILE;
    curl_off_t uploaded = 0;
    curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    bool never_sent = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                      rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR ||
                      rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
    result.maybe_delivered = !never_sent && uploaded > 0;
  }
};

Status check_endpoint(const std::string& url, bool allow_insecure_http, std::string* normalized,
                      bool* stripped) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  static const std::string kIngest = "/api/ingest";
  bool had_route = u.size() > kIngest.size() &&
                   lower(u.substr(u.size() - kIngest.size())) == kIngest;
  if (had_route) {
    u.resize(u.size() - kIngest.size());
    while (!u.empty() && u.back() == '/') u.pop_back();
  }
  if (stripped) *stripped = had_route;
  std::string scheme;
  if (lower(u.substr(0, 8)) == "https://") {
    scheme = "https";
  } else if (lower(u.substr(0, 7)) == "http://") {
    scheme = "http";
  } else {
    return Status::invalid("endpoint: must start with https:// or http://, got \"" + url + "\"");
  }
  std::string rest = u.substr(scheme.size() + 3);
  std::string host;
  if (!rest.empty() && rest[0] == '[') {
    host = rest.substr(0, rest.find(']') + 1);
  } else {
    host = rest.substr(0, rest.find_first_of(":/?#"));
  }
  host = lower(host);
  if (host.empty()) return Status::invalid("endpoint: no host in \"" + url + "\"");
  if (rest.find('@') != std::string::npos && rest.find('@') < rest.find('/')) {
    return Status::invalid("endpoint: credentials in the URL are not supported; use api_key");
  }
  for (char c : u) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      return Status::invalid("endpoint: spaces and control characters are not allowed in \"" +
                             url + "\"");
    }
  }
  bool loopback = is_loopback_host(host);
  if (scheme == "http" && !loopback && !allow_insecure_http) {
    return Status::invalid("endpoint: plain http:// to " + host +
                           " would send the API key in clear text; use https:// or set "
                           "allow_insecure_http");
  }
  *normalized = u;
  return Status();
}

namespace {

// The host of a URL or of a proxy string such as "proxy:3128", "http://user:pw@proxy:3128",
// "socks5h://[::1]:1080", lowercased.
std::string host_of(const std::string& url) {
  std::string rest = url;
  std::size_t scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  std::size_t at = rest.rfind('@');
  if (at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') return lower(rest.substr(0, rest.find(']') + 1));
  return lower(rest.substr(0, rest.find(':')));
}

bool is_plain_http(const std::string& url) { return lower(url.substr(0, 7)) == "http://"; }

}  // namespace

bool is_plain_http_loopback(const std::string& endpoint) {
  return is_plain_http(endpoint) && is_loopback_host(host_of(endpoint));
}

Status check_route(const std::string& endpoint, const std::string& proxy,
                   bool allow_insecure_http) {
  if (allow_insecure_http || proxy.empty() || !is_plain_http(endpoint)) return Status();
  std::string host = host_of(proxy);
  if (is_loopback_host(host)) return Status();
  return Status::invalid("proxy: plain http:// to " + host_of(endpoint) + " through the proxy " +
                         (host.empty() ? proxy : host) +
                         " would send the API key in clear text to the proxy; use https:// "
                         "for the endpoint, a proxy on this machine, or set "
                         "allow_insecure_http");
}

Status check_api_key(const std::string& key) {
  for (std::size_t i = 0; i < key.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c == 0x7F) {
      // The key itself is never repeated in a message.
      return Status::invalid("api_key: contains a control character (byte " + std::to_string(c) +
                             " at position " + std::to_string(i) +
                             "), which would break the request's headers; the key is not shown");
    }
  }
  return Status();
}

std::optional<std::int64_t> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  bool digits = true;
  for (char c : value) digits &= std::isdigit(static_cast<unsigned char>(c)) != 0;
  if (digits) {
    if (value.size() > 9) return std::int64_t{999999999} * 1000;
    return std::stoll(value) * 1000;
  }
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  std::int64_t delta = (static_cast<std::int64_t>(when) - std::time(nullptr)) * 1000;
  return delta > 0 ? delta : 0;
}

Transport::Transport(const TransportConfig& config) : config_(config) {}

Transport::~Transport() {
  cancel_all();
  for (auto* s : slots_) delete s;
  if (void* m = multi_.load()) curl_multi_cleanup(m);
}

void Transport::start_curl() {
  // At the first request, not at open: a client that has sent nothing (offline, or idle)
  // never initialises libcurl and its TLS library, which costs about 2 MB of resident pages.
  global_init();
  void* m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, static_cast<long>(config_.slots));
  for (int i = 0; i < config_.slots; ++i) slots_.push_back(new Slot(config_));
  multi_.store(m);
}

bool Transport::start(const std::string& path, std::string body, std::uint64_t tag) {
  if (!multi_.load()) start_curl();
  for (auto* s : slots_) {
    if (s->busy) continue;
    s->prepare(config_, path, std::move(body));
    s->tag = tag;
    s->busy = true;
    curl_multi_add_handle(multi_.load(), s->easy);
    ++in_flight_;
    return true;
  }
  return false;
}

void Transport::poll(std::chrono::milliseconds max_wait,
                     std::vector<std::pair<std::uint64_t, HttpResult>>* done) {
  if (in_flight_ == 0) return;
  void* multi = multi_.load();
  int running = 0;
  curl_multi_perform(multi, &running);
  auto collect = [&] {
    int left = 0;
    bool any = false;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      for (auto* s : slots_) {
        if (s->easy != m->easy_handle) continue;
        s->finish(m->data.result);
        curl_multi_remove_handle(multi, s->easy);
        s->busy = false;
        --in_flight_;
        done->emplace_back(s->tag, std::move(s->result));
        any = true;
      }
    }
    return any;
  };
  if (collect() || in_flight_ == 0) return;
  curl_multi_poll(multi, nullptr, 0, static_cast<int>(max_wait.count()), nullptr);
  curl_multi_perform(multi, &running);
  collect();
}

void Transport::interrupt() {
  // Before the first request there is no poll() to wake: poll() runs only with one in flight.
  if (void* m = multi_.load()) curl_multi_wakeup(m);
}

void Transport::cancel_all() {
  for (auto* s : slots_) {
    if (!s->busy) continue;
    curl_multi_remove_handle(multi_.load(), s->easy);  // aborts the transfer, closes its connection
    s->busy = false;
    --in_flight_;
  }
}

HttpResult Transport::get_once(const TransportConfig& config, const std::string& path,
                               const std::atomic<bool>* abort) {
  global_init();
  TransportConfig c = config;
  c.gzip = false;
  Slot slot(c);
  slot.abort = abort;
  slot.prepare(c, path, std::string());
  curl_easy_setopt(slot.easy, CURLOPT_HTTPGET, 1L);
  slot.finish(curl_easy_perform(slot.easy));
  return std::move(slot.result);
}

HttpResult Transport::post_once(const TransportConfig& config, const std::string& path,
                                const std::string& body, const std::atomic<bool>* abort) {
  global_init();
  TransportConfig c = config;
  c.gzip = false;
  Slot slot(c);
  slot.abort = abort;
  slot.prepare(c, path, body);
  slot.finish(curl_easy_perform(slot.easy));
  return std::move(slot.result);
}

}  // namespace agentburn::detail
