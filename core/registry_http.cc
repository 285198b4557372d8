// The libcurl transport of the registry client (core/registry.h): one easy
// handle per request, so it is safe on any number of threads.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <mutex>

#include "core/registry.h"

namespace dfgen::registry {
namespace {

constexpr size_t kMaxBody = 8 << 20;   // error bodies, manifests, tokens

struct Exchange {
  const HttpRequest* req = nullptr;
  HttpResponse* resp = nullptr;
  CURL* curl = nullptr;
  FILE* upload = nullptr;
  int64_t upload_left = 0;
  size_t upload_pos = 0;
  bool aborted = false;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string line(data, size * n);
  if (line.starts_with("HTTP/")) {
    ex->resp->headers.clear();   // a new response (redirect, 100-continue)
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos)
    ex->resp->headers.emplace(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(ex->curl, CURLINFO_RESPONSE_CODE, &code);
  if (ex->req->sink && code >= 200 && code < 300) {
    if (!ex->req->sink(data, len)) {
      ex->aborted = true;
      return 0;
    }
    return len;
  }
  if (ex->resp->body.size() + len > kMaxBody) return 0;
  ex->resp->body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t want = size * n;
  if (ex->upload) {
    want = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(want), ex->upload_left));
    if (want == 0) return 0;
    size_t got = std::fread(buf, 1, want, ex->upload);
    ex->upload_left -= static_cast<int64_t>(got);
    return got;
  }
  const std::string& body = ex->req->body;
  size_t got = std::min(want, body.size() - ex->upload_pos);
  std::copy_n(body.data() + ex->upload_pos, got, buf);
  ex->upload_pos += got;
  return got;
}

HttpResponse::Failure failure_of(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST: return HttpResponse::Failure::kResolve;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return HttpResponse::Failure::kConnect;
    case CURLE_SSL_CONNECT_ERROR: return HttpResponse::Failure::kTlsHandshake;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE: return HttpResponse::Failure::kTlsVerify;
    default: return HttpResponse::Failure::kOther;
  }
}

class CurlTransport : public Transport {
 public:
  HttpResponse send(const HttpRequest& req) override {
    HttpResponse resp;
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) {
      resp.failure = HttpResponse::Failure::kOther;
      resp.failure_message = "curl_easy_init failed";
      return resp;
    }
    Exchange ex{&req, &resp, curl.get()};
    std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, std::fclose);
    if (!req.body_file.empty()) {
      file.reset(std::fopen(req.body_file.c_str(), "rb"));
      if (!file || std::fseek(file.get(), static_cast<long>(req.body_offset), SEEK_SET) != 0) {
        resp.failure = HttpResponse::Failure::kOther;
        resp.failure_message = "open " + req.body_file + ": " + std::strerror(errno);
        return resp;
      }
      ex.upload = file.get();
      ex.upload_left = req.body_length;
    }
    curl_slist* headers = nullptr;
    for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
    headers = curl_slist_append(headers, "Expect:");
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);

    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dfgen");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);     // abort a transfer stalled for 60 s
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    // Blob GETs are redirected to storage (S3, a CDN); curl drops our
    // Authorization header when the host changes.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.method == "GET" || req.method == "HEAD" ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, req.verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, req.verify_tls ? 2L : 0L);
    if (!req.ca_file.empty()) {
      // CAINFO replaces the default bundle: keep the system's through CAPATH.
      curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT" || req.method == "POST" || req.method == "PATCH") {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(c, CURLOPT_READDATA, &ex);
      int64_t size = req.body_file.empty() ? static_cast<int64_t>(req.body.size()) : req.body_length;
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      resp.failure = ex.aborted ? HttpResponse::Failure::kAborted : failure_of(rc);
      resp.failure_message = errbuf[0] ? errbuf : curl_easy_strerror(rc);
      return resp;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    resp.status = static_cast<int>(code);
    return resp;
  }
};

}  // namespace

std::shared_ptr<Transport> curl_transport() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_shared<CurlTransport>();
}

}  // namespace dfgen::registry
