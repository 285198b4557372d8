// libcurl, loaded on first use. dfrun starts once per build step and most
// steps never touch the network, but linking libcurl (and through it gnutls,
// krb5, ldap, ssh2, nghttp2, ...: some twenty libraries) cost every process
// ~4 ms of CPU in the dynamic loader, half of a cached `dfrun step`
// (bench/analysis.md). These definitions stand in for the libcurl functions
// the project calls (same names and signatures: core/registry_http.cc and
// runner/step/add.cc use curl as usual) and forward to the real library,
// dlopen()ed by the first call. Without libcurl.so.4, curl_easy_init()
// returns null and curl_global_init() CURLE_FAILED_INIT: the callers report
// those as errors.
//
// curl_easy_setopt/getinfo are variadic: the one argument after the option
// (a long, curl_off_t, pointer or function pointer: all one integer register
// in the x86-64 and aarch64 calling conventions) is forwarded as it came.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdint>

namespace {

struct Curl {
  bool ok = false;
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
};

template <typename F>
bool load(void* handle, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(handle, name));
  return out != nullptr;
}

const Curl& curl() {
  static const Curl c = [] {
    Curl c;
    void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) return c;
    c.ok = load(h, "curl_global_init", c.global_init) && load(h, "curl_easy_init", c.easy_init) &&
           load(h, "curl_easy_setopt", c.easy_setopt) && load(h, "curl_easy_perform", c.easy_perform) &&
           load(h, "curl_easy_getinfo", c.easy_getinfo) && load(h, "curl_easy_strerror", c.easy_strerror) &&
           load(h, "curl_easy_cleanup", c.easy_cleanup) && load(h, "curl_slist_append", c.slist_append) &&
           load(h, "curl_slist_free_all", c.slist_free_all);
    return c;
  }();
  return c;
}

}  // namespace

extern "C" {

CURLcode curl_global_init(long flags) {
  return curl().ok ? curl().global_init(flags) : CURLE_FAILED_INIT;
}

CURL* curl_easy_init() { return curl().ok ? curl().easy_init() : nullptr; }

CURLcode curl_easy_setopt(CURL* handle, CURLoption option, ...) {
  va_list ap;
  va_start(ap, option);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return curl().easy_setopt(handle, option, arg);
}

CURLcode curl_easy_getinfo(CURL* handle, CURLINFO info, ...) {
  va_list ap;
  va_start(ap, info);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return curl().easy_getinfo(handle, info, arg);
}

CURLcode curl_easy_perform(CURL* handle) { return curl().easy_perform(handle); }

const char* curl_easy_strerror(CURLcode code) {
  return curl().ok ? curl().easy_strerror(code) : "libcurl (libcurl.so.4) could not be loaded";
}

void curl_easy_cleanup(CURL* handle) {
  if (handle) curl().easy_cleanup(handle);
}

curl_slist* curl_slist_append(curl_slist* list, const char* s) {
  return curl().ok ? curl().slist_append(list, s) : nullptr;
}

void curl_slist_free_all(curl_slist* list) {
  if (list) curl().slist_free_all(list);
}

}  // extern "C"
