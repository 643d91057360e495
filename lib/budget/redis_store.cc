#include "budget/redis_store.hpp"

#include <cstdlib>
#include <cstring>

#ifdef AGENTBURN_WITH_REDIS
#include <hiredis/hiredis.h>
#include <sys/time.h>
#endif

namespace agentburn::budget {

namespace {

// Window spend: a hash of UTC hour -> nano-dollars, with their sum in the field "=" and the
// oldest hour in "<", so that reading a window's spend costs two fields, not its hours (a
// monthly window has up to 720; a total budget's grows for ever). When "<" is before the
// window's first hour, those hours are deleted and "=" and "<" computed again. Holds: a hash
// of reservation id -> nano-dollars, with their sum in the field "=", and a sorted set of the
// ids by expiry (ms, on the store's clock): an expired hold leaves the sum when it is next
// read, so reading the holds costs the expired ones, not the open ones. Lua numbers are
// doubles: sums are exact up to 2^53 nano-dollars ($9 million) per window.
constexpr const char* kCommon = R"lua(
-- A number as the integer text Redis reads: the arguments of redis.call are passed as text,
-- and some Redis versions (7.2.0 to 7.2.4) write a whole double such as 1e8 as "1e+08".
local function int(x) return string.format('%.0f', x) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function spent(key, first)
  local v = redis.call('HMGET', key, '=', '<')
  local total, oldest = tonumber(v[1]), tonumber(v[2])
  if total and oldest and oldest >= first then return total, oldest end
  total, oldest = 0, -1
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local f = all[j]
    if f ~= '=' and f ~= '<' then
      local h = tonumber(f)
      if h < first then
        redis.call('HDEL', key, f)
      else
        total = total + tonumber(all[j + 1])
        if oldest < 0 or h < oldest then oldest = h end
      end
    end
  end
  if oldest < 0 then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, '=', int(total), '<', int(oldest))
  end
  return total, oldest
end
-- Drops the holds `ids` (distinct) of a window, in four calls per thousand whatever their
-- number (unpack takes some 8,000 values at most); answers how many were there.
local function drop_holds(h, x, ids)
  local n = 0
  for a = 1, #ids, 1000 do
    local b = math.min(a + 999, #ids)
    redis.call('ZREM', x, unpack(ids, a, b))
    local held, gone, sum = redis.call('HMGET', h, unpack(ids, a, b)), {}, 0
    for i = a, b do
      local v = held[i - a + 1]
      if v then
        gone[#gone + 1] = ids[i]
        sum = sum + tonumber(v)
      end
    end
    if #gone > 0 then redis.call('HDEL', h, unpack(gone)) end
    -- Not for holds of 0 ("-0" is no integer to Redis).
    if sum ~= 0 then redis.call('HINCRBY', h, '=', int(-sum)) end
    n = n + #gone
  end
  return n
end
local function held(h, x, now)
  -- No expiries left: no hold either, whatever the holds key says (the two keys expire
  -- together; this keeps a sum from outliving its holds if they ever did not).
  if redis.call('EXISTS', x) == 0 then
    redis.call('DEL', h)
    return 0
  end
  drop_holds(h, x, redis.call('ZRANGEBYSCORE', x, '-inf', now))
  return tonumber(redis.call('HGET', h, '=') or '0')
end
)lua";

// KEYS: spend, holds, expiries of each block budget. ARGV: estimate, id, ttl ms, then per
// budget its limit and first hour. {1, expiry} with the hold on all, or {0, i, spent, held}
// on none.
constexpr const char* kReserve = R"lua(
local est, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local n = #KEYS / 3
for i = 1, n do
  local s = spent(KEYS[3 * i - 2], tonumber(ARGV[3 + 2 * i]))
  local h = held(KEYS[3 * i - 1], KEYS[3 * i], now)
  if s + h + est > tonumber(ARGV[2 + 2 * i]) then return {0, i, s, h} end
end
for i = 1, n do
  local h, x = KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('HSET', h, id, ARGV[1])
  redis.call('HINCRBY', h, '=', ARGV[1])
  redis.call('ZADD', x, int(now + ttl), id)
  -- The keys outlive their last hold by up to one TTL: extended (to two, both at once, so
  -- that they expire together) only when one would not, so that most reserves write no
  -- expiry.
  if redis.call('PTTL', h) < ttl or redis.call('PTTL', x) < ttl then
    redis.call('PEXPIRE', h, int(2 * ttl))
    redis.call('PEXPIRE', x, int(2 * ttl))
  end
end
return {1, now + ttl}
)lua";

// A batch of settles. ARGV: the seen-keys' ttl ms, the number of records, then per record:
// nano-dollars, hour, reservation id (or ""), m (its spend keys), n (its holds), then per
// spend key its window's first hour and ttl ms (0: none). KEYS per record: its event's
// seen-key, its m spend keys, then the holds and expiries keys of its n holds. Per record:
// 1 and each spend key's before and after, or 0 and zeros when its seen-key was there
// (applied before, perhaps earlier in the same batch).
constexpr const char* kSettle = R"lua(
local seen_ttl, ai, ki = ARGV[1], 3, 1
local out, base, add, ttls, drops = {}, {}, {}, {}, {}
for r = 1, tonumber(ARGV[2]) do
  local nanos, hour, id = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1]), ARGV[ai + 2]
  local m, n = tonumber(ARGV[ai + 3]), tonumber(ARGV[ai + 4])
  local fresh = redis.call('SET', KEYS[ki], '1', 'NX', 'PX', seen_ttl)
  ai, ki = ai + 5, ki + 1
  if id ~= '' then  -- again or not, its reservation's holds go (below, per window)
    for j = 0, n - 1 do
      local h = KEYS[ki + m + 2 * j]
      local d = drops[h]
      if d == nil then
        d = {x = KEYS[ki + m + 2 * j + 1], ids = {}, has = {}}
        drops[h] = d
      end
      if not d.has[id] then
        d.has[id] = true
        d.ids[#d.ids + 1] = id
      end
    end
  end
  out[#out + 1] = fresh and 1 or 0
  for i = 0, m - 1 do
    local key, first, ttl = KEYS[ki + i], tonumber(ARGV[ai + 2 * i]), tonumber(ARGV[ai + 2 * i + 1])
    local before, after = 0, 0
    if fresh then
      -- Each window is read once per batch; its hours are added to once, at the end.
      -- Only a window that gains spend is written (a record of an hour before the window's
      -- first adds nothing to it, and its window may have no key at all).
      if base[key] == nil then base[key] = spent(key, first) end
      before = base[key]
      after = before
      if hour >= first and nanos > 0 then
        local h = ARGV[ai - 4]
        if add[key] == nil then add[key] = {} end
        add[key][h] = (add[key][h] or 0) + nanos
        after = before + nanos
        base[key] = after
        ttls[key] = ttl
      end
    end
    out[#out + 1] = before
    out[#out + 1] = after
  end
  ai, ki = ai + 2 * m, ki + m + 2 * n
end
for h, d in pairs(drops) do drop_holds(h, d.x, d.ids) end
for key, hours in pairs(add) do
  local sum, oldest = 0, tonumber(redis.call('HGET', key, '<'))
  for h, v in pairs(hours) do
    redis.call('HINCRBY', key, h, int(v))
    sum = sum + v
    if not oldest or tonumber(h) < oldest then oldest = tonumber(h) end
  end
  redis.call('HINCRBY', key, '=', int(sum))
  redis.call('HSET', key, '<', int(oldest))
  if ttls[key] and ttls[key] > 0 then redis.call('PEXPIRE', key, int(ttls[key])) end
end
return out
)lua";

// KEYS: holds and expiries keys. ARGV: reservation id. The number of holds dropped.
constexpr const char* kRelease = R"lua(
local n = 0
for i = 1, #KEYS - 1, 2 do n = n + drop_holds(KEYS[i], KEYS[i + 1], {ARGV[1]}) end
return n
)lua";

// KEYS: spend, holds, expiries of each window. ARGV: each window's first hour. Per window:
// spent, held, oldest hour with spend (-1: none).
constexpr const char* kRead = R"lua(
local now = now_ms()
local out = {}
for i = 1, #KEYS / 3 do
  local s, oldest = spent(KEYS[3 * i - 2], tonumber(ARGV[i]))
  out[#out + 1] = s
  out[#out + 1] = held(KEYS[3 * i - 1], KEYS[3 * i], now)
  out[#out + 1] = oldest
end
return out
)lua";

std::string script_text(Script s) {
  const char* body = s == Script::kReserve   ? kReserve
                     : s == Script::kSettle  ? kSettle
                     : s == Script::kRelease ? kRelease
                                             : kRead;
  return std::string(kCommon) + body;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    int a = i + 1 < in.size() ? hex(in[i + 1]) : -1, b = i + 2 < in.size() ? hex(in[i + 2]) : -1;
    if (a < 0 || b < 0) return false;
    out->push_back(static_cast<char>(a * 16 + b));
    i += 2;
  }
  return true;
}

}  // namespace

std::string StoreUrl::shown() const {
  bool v6 = host.find(':') != std::string::npos;
  return "redis://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

Status parse_store_url(const std::string& url, StoreUrl* out) {
  const std::string scheme = "redis://";
  // Never in a message: the URL may carry a password.
  auto bad = [](const std::string& why) {
    return Status::invalid("budget_store: " + why +
                           " (expected \"local\" or \"redis://[:password@]host[:port][/db]\")");
  };
  if (url.compare(0, scheme.size(), scheme) != 0) {
    return bad("unknown store; it starts neither with redis:// nor is \"local\"");
  }
  std::string_view rest(url);
  rest.remove_prefix(scheme.size());
  *out = StoreUrl();
  std::size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    std::size_t colon = auth.find(':');
    std::string_view pass = colon == std::string_view::npos ? auth : auth.substr(colon + 1);
    if (!percent_decode(pass, &out->password)) return bad("the password has a bad %-escape");
    rest.remove_prefix(at + 1);
  }
  std::size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      if (db.size() > 5 || db.find_first_not_of("0123456789") != std::string_view::npos) {
        return bad("the database number \"" + std::string(db) + "\" is not a number");
      }
      out->db = std::atoi(std::string(db).c_str());
    }
  }
  std::string_view host = hostport, port;
  if (!hostport.empty() && hostport[0] == '[') {
    std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("the host's '[' has no ']'");
    host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return bad("unexpected text after the host's ']'");
      port = hostport.substr(close + 2);
    }
  } else {
    std::size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
    }
  }
  if (host.empty()) return bad("the host is missing");
  out->host = std::string(host);
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::atoi(std::string(port).c_str()) < 1 || std::atoi(std::string(port).c_str()) > 65535) {
      return bad("the port \"" + std::string(port) + "\" is not a number from 1 to 65535");
    }
    out->port = std::atoi(std::string(port).c_str());
  }
  return Status();
}

Status check_store_url(const std::string& url) {
  if (url == "local") return Status();
  StoreUrl u;
  Status s = parse_store_url(url, &u);
  if (!s.ok()) return s;
#ifndef AGENTBURN_WITH_REDIS
  return Status::invalid(
      "budget_store: this agentburn was built without Redis support "
      "(configure it with -DAGENTBURN_WITH_REDIS=ON and libhiredis-dev)");
#else
  return Status();
#endif
}

RedisStore::RedisStore(StoreUrl url, int timeout_ms) : url_(std::move(url)), timeout_(timeout_ms) {}

bool RedisStore::acquire(Clock::time_point deadline) {
  std::unique_lock<std::mutex> g(mu_);
  if (deadline == Clock::time_point::max()) {
    turn_cv_.wait(g, [&] { return !busy_; });
  } else if (!turn_cv_.wait_until(g, deadline, [&] { return !busy_; })) {
    return false;
  }
  busy_ = true;
  return true;
}

void RedisStore::release() {
  {
    std::lock_guard<std::mutex> g(mu_);
    busy_ = false;
  }
  turn_cv_.notify_one();
}

#ifdef AGENTBURN_WITH_REDIS

namespace {

timeval to_timeval(std::chrono::steady_clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 1000) us = 1000;  // hiredis reads 0 as "no timeout"
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

void flatten(const redisReply* r, std::vector<long long>* out) {
  if (r->type == REDIS_REPLY_INTEGER) {
    out->push_back(r->integer);
  } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    out->push_back(std::strtoll(r->str, nullptr, 10));
  } else if (r->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < r->elements; ++i) flatten(r->element[i], out);
  } else if (r->type == REDIS_REPLY_NIL) {
    out->push_back(0);
  }
}

}  // namespace

RedisStore::~RedisStore() {
  if (ctx_) redisFree(ctx_);
}

void RedisStore::after_fork_child() {
  new (&mu_) std::mutex();
  new (&turn_cv_) std::condition_variable();
  busy_ = false;
  // The parent's socket: closed here (the parent keeps its own), never written.
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  for (auto& s : sha_) s.clear();
  retry_at_ = {};
  backoff_ = std::chrono::milliseconds(0);
}

void RedisStore::fail(const std::string& why) {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  last_error_ = why;
  reachable_.store(false, std::memory_order_relaxed);
  backoff_ = std::min(std::chrono::milliseconds(5000),
                      std::max(std::chrono::milliseconds(100), backoff_ * 2));
  retry_at_ = Clock::now() + backoff_;
}

Status RedisStore::call(const std::vector<std::string_view>& argv, Clock::time_point deadline,
                        void** reply) {
  *reply = nullptr;
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) {
    return Status::timeout("budget store " + url_.shown() + ": no answer within " +
                           std::to_string(timeout_.count()) + " ms");
  }
  // The socket's timeout is set again only when it would outlast what is left (by more than
  // a millisecond) or cut the call at less than half of it: two system calls saved on most
  // calls.
  if (socket_timeout_ > left + std::chrono::milliseconds(1) || socket_timeout_ < left / 2) {
    socket_timeout_ = std::chrono::duration_cast<std::chrono::microseconds>(left);
    redisSetTimeout(ctx_, to_timeval(left));
  }
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  void* r = redisCommandArgv(ctx_, static_cast<int>(args.size()), args.data(), lens.data());
  if (!r) {
    std::string why = ctx_->errstr[0] ? ctx_->errstr : "the connection failed";
    bool timed_out =
        ctx_->err == REDIS_ERR_IO && (why.find("temporarily unavailable") != std::string::npos ||
                                      why.find("timed out") != std::string::npos);
    fail(why);
    std::string m =
        "budget store " + url_.shown() + ": " +
        (timed_out ? "no answer within " + std::to_string(timeout_.count()) + " ms" : why);
    return timed_out ? Status::timeout(m) : Status::network(m);
  }
  *reply = r;
  // An answer: the backoff starts over (not at connect: a store that accepts connections but
  // does not answer in time keeps backing off).
  backoff_ = std::chrono::milliseconds(0);
  reachable_.store(true, std::memory_order_relaxed);
  return Status();
}

Status RedisStore::connect(Clock::time_point deadline) {
  if (ctx_) return Status();
  if (Clock::now() < retry_at_) {
    return Status::network("budget store " + url_.shown() + " unreachable (" + last_error_ +
                           "); trying again shortly");
  }
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) {
    return Status::timeout("budget store " + url_.shown() + ": no answer within " +
                           std::to_string(timeout_.count()) + " ms");
  }
  ctx_ = redisConnectWithTimeout(url_.host.c_str(), url_.port, to_timeval(left));
  socket_timeout_ = std::chrono::microseconds(0);
  if (!ctx_ || ctx_->err) {
    std::string why = ctx_ ? ctx_->errstr : "out of memory";
    fail("cannot connect: " + why);
    return Status::network("budget store " + url_.shown() + ": cannot connect: " + why);
  }
  auto simple = [&](const std::vector<std::string_view>& argv, std::string* text) -> Status {
    void* raw;
    Status s = call(argv, deadline, &raw);
    if (!s.ok()) return s;
    auto* r = static_cast<redisReply*>(raw);
    Status out;
    if (r->type == REDIS_REPLY_ERROR) {
      out = Status::network("budget store " + url_.shown() + ": " + std::string(argv[0]) +
                            " was refused: " + std::string(r->str, r->len));
    } else if (text && r->type == REDIS_REPLY_STRING) {
      text->assign(r->str, r->len);
    }
    freeReplyObject(r);
    if (!out.ok()) fail(out.message());
    return out;
  };
  Status s;
  if (!url_.password.empty()) {
    if (!(s = simple({"AUTH", url_.password}, nullptr)).ok()) return s;
  }
  if (url_.db != 0) {
    if (!(s = simple({"SELECT", std::to_string(url_.db)}, nullptr)).ok()) return s;
  }
  for (int i = 0; i < 4; ++i) {
    if (!(s = simple({"SCRIPT", "LOAD", script_text(static_cast<Script>(i))}, &sha_[i])).ok()) {
      return s;
    }
  }
  return Status();
}

Status RedisStore::run(Script script, const std::vector<std::string>& keys,
                       const std::vector<std::string>& args, std::vector<long long>* out,
                       std::chrono::milliseconds extra) {
  out->clear();
  auto deadline = Clock::now() + timeout_ + extra;
  Turn turn(this, deadline);
  if (!turn.held) {
    return Status::timeout("budget store " + url_.shown() + ": busy past " +
                           std::to_string(timeout_.count()) + " ms");
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status s = connect(deadline);
    if (!s.ok()) return s;
    const std::string nkeys = std::to_string(keys.size());
    std::vector<std::string_view> argv;
    argv.reserve(3 + keys.size() + args.size());
    argv.push_back("EVALSHA");
    argv.push_back(sha_[static_cast<int>(script)]);
    argv.push_back(nkeys);
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    void* raw;
    s = call(argv, deadline, &raw);
    if (!s.ok()) return s;
    auto* r = static_cast<redisReply*>(raw);
    if (r->type == REDIS_REPLY_ERROR) {
      std::string err(r->str, r->len);
      freeReplyObject(r);
      if (err.compare(0, 8, "NOSCRIPT") == 0 && attempt == 0) {
        fail("the server forgot the scripts");  // reconnects and loads them again
        retry_at_ = {};
        continue;
      }
      return Status::internal("budget store " + url_.shown() + " refused a script: " + err);
    }
    flatten(r, out);
    freeReplyObject(r);
    return Status();
  }
  return Status::internal("budget store " + url_.shown() + ": the scripts cannot be loaded");
}

Status RedisStore::command(const std::vector<std::string>& argv, std::vector<long long>* out,
                           std::string* text) {
  out->clear();
  auto deadline = Clock::now() + timeout_;
  Turn turn(this, deadline);
  if (!turn.held) return Status::timeout("budget store busy");
  Status s = connect(deadline);
  if (!s.ok()) return s;
  void* raw;
  s = call(std::vector<std::string_view>(argv.begin(), argv.end()), deadline, &raw);
  if (!s.ok()) return s;
  auto* r = static_cast<redisReply*>(raw);
  if (r->type == REDIS_REPLY_ERROR) {
    s = Status::internal(std::string(r->str, r->len));
  } else {
    if (text && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
      text->assign(r->str, r->len);
    }
    flatten(r, out);
  }
  freeReplyObject(r);
  return s;
}

#else  // without Redis support: check_store_url() refuses every redis:// URL before this

RedisStore::~RedisStore() = default;
void RedisStore::after_fork_child() { busy_ = false; }
void RedisStore::fail(const std::string&) {}
Status RedisStore::connect(Clock::time_point) {
  return Status::invalid("built without Redis support");
}
Status RedisStore::call(const std::vector<std::string_view>&, Clock::time_point, void**) {
  return connect({});
}
Status RedisStore::run(Script, const std::vector<std::string>&, const std::vector<std::string>&,
                       std::vector<long long>*, std::chrono::milliseconds) {
  return connect({});
}
Status RedisStore::command(const std::vector<std::string>&, std::vector<long long>*, std::string*) {
  return connect({});
}

#endif

}  // namespace agentburn::budget
