#include "http_get.hpp"

#include <curl/curl.h>

#include <cstring>

#include "transport/http.hpp"

namespace agentburn::cli {

namespace {

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() < (16u << 20)) out->append(data, size * n);
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  std::string line(data, size * n);
  if (line.size() > 5 && strncasecmp(line.c_str(), "date:", 5) == 0) {
    std::string value = line.substr(5);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    *static_cast<std::string*>(user) = value;
  }
  return size * n;
}

}  // namespace

GetResult http_get(const std::string& url, const GetOptions& options) {
  GetResult r;
  CURL* curl = curl_easy_init();
  if (!curl) {
    r.error = "cannot start libcurl";
    return r;
  }
  char error[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  if (!options.api_key.empty()) {
    headers = curl_slist_append(headers, ("x-api-key: " + options.api_key).c_str());
    headers = curl_slist_append(headers, ("Authorization: Bearer " + options.api_key).c_str());
  }
  headers = curl_slist_append(headers, "Accept: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.date);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  if (detail::is_plain_http_loopback(url)) curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (options.cert_info) curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L);
  if (!options.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_bundle.c_str());
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_certinfo* certs = nullptr;
    if (options.cert_info && curl_easy_getinfo(curl, CURLINFO_CERTINFO, &certs) == CURLE_OK &&
        certs && certs->num_of_certs > 0) {
      for (curl_slist* s = certs->certinfo[0]; s; s = s->next) {
        if (std::strncmp(s->data, "Expire date:", 12) == 0) r.cert_expiry = s->data + 12;
        if (std::strncmp(s->data, "Subject:", 8) == 0) r.cert_subject = s->data + 8;
      }
    }
  } else {
    r.error = error[0] ? error : curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

Status server_url(const std::string& what, const std::string& url, std::string* base) {
  Status s = detail::check_endpoint(url, false, base);
  if (!s.ok()) return Status::invalid(what + ": " + s.message());
  return Status();
}

Status get_json(const std::string& base, const std::string& path, const std::string& key,
                std::string* body) {
  GetOptions o;
  o.api_key = key;
  GetResult r = http_get(base + path, o);
  if (r.status == 0) return Status::network("GET " + base + path + ": " + r.error);
  if (r.status == 401 || r.status == 403) {
    return Status::auth("GET " + base + path + ": the server refused the API key (HTTP " +
                        std::to_string(r.status) + "); set AGENTBURN_API_KEY or --api-key-file");
  }
  if (r.status != 200) {
    return Status::http("GET " + base + path + ": HTTP " + std::to_string(r.status) + ": " +
                        r.body.substr(0, 300));
  }
  *body = std::move(r.body);
  return Status();
}

}  // namespace agentburn::cli
