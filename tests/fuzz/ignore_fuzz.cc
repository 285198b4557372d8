// libFuzzer entry point for the .dockerignore matcher (core/ignore.h): the
// input is split at its first NUL into an ignore file and a list of paths
// (one a line). Any ignore file either parses or fails with an error; on a
// parsed one, every path is matched and the promise of may_include_below()
// is checked: when it says nothing below an excluded directory can come back,
// a child of that directory must be excluded too (a walker relies on this to
// skip the directory wholesale). Built by run.sh; replayed by
// core/ignore_corpus_test.cc.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/ignore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view text = in.substr(0, nul);
  std::string_view paths = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  auto matcher = dfgen::IgnoreMatcher::parse(text, ".dockerignore");
  if (!matcher.ok()) {
    if (matcher.error().render().empty()) __builtin_trap();
    return 0;
  }
  while (!paths.empty()) {
    size_t nl = paths.find('\n');
    std::string_view path = paths.substr(0, nl);
    paths = nl == std::string_view::npos ? std::string_view() : paths.substr(nl + 1);
    if (path.empty()) continue;
    bool excluded = matcher->excluded(path);
    if (matcher->excluded(path) != excluded) __builtin_trap();   // deterministic
    bool below = matcher->may_include_below(path);
    // Only clean relative paths are what a context walker asks about.
    bool clean = path.front() != '/' && path.back() != '/' && path.find("//") == std::string_view::npos &&
                 path.find("/./") == std::string_view::npos && path.find("..") == std::string_view::npos &&
                 path.find('\\') == std::string_view::npos && path != "." && !path.starts_with("./") &&
                 !path.ends_with("/.");
    if (clean && excluded && !below) {
      std::string child = std::string(path) + "/x";
      if (!matcher->excluded(child)) __builtin_trap();
    }
  }
  return 0;
}
