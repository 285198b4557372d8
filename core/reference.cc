#include "core/reference.h"

#include <cctype>

#include "core/sha256.h"

namespace dfgen {

namespace {

constexpr std::string_view kDefaultRegistry = "docker.io";
constexpr std::string_view kDefaultTag = "latest";
constexpr size_t kMaxNameLength = 255;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool valid_path_component(std::string_view c) {
  size_t i = 0;
  auto run = [&] {
    size_t start = i;
    while (i < c.size() && is_lower_alnum(c[i])) ++i;
    return i > start;
  };
  if (!run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!run()) return false;
  }
  return true;
}

// host[:port], host = labels of [A-Za-z0-9-] (no leading/trailing '-')
// separated by '.', or a bracketed IPv6 address.
bool valid_domain(std::string_view d) {
  std::string_view host = d;
  if (!d.empty() && d[0] == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    host = {};
    d.remove_prefix(close + 1);
    if (d.empty()) return true;
    if (d[0] != ':') return false;
  } else {
    auto colon = d.find(':');
    host = d.substr(0, colon);
    d = colon == std::string_view::npos ? std::string_view{} : d.substr(colon);
    if (host.empty()) return false;
    size_t start = 0;
    while (start <= host.size()) {
      size_t dot = host.find('.', start);
      std::string_view label = host.substr(start, dot == std::string_view::npos ? host.npos : dot - start);
      if (label.empty() || label.front() == '-' || label.back() == '-') return false;
      for (char c : label)
        if (!is_alnum(c) && c != '-') return false;
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (d.empty()) return true;
  std::string_view port = d.substr(1);   // after ':'
  if (port.empty()) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  if (!is_alnum(t[0]) && t[0] != '_') return false;
  for (char c : t)
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

bool has_upper(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

Error invalid(std::string_view text, std::string_view why) {
  return Error(fmt::format("invalid reference format \"{}\": {}", text, why));
}

}  // namespace

std::string Reference::name() const { return registry + "/" + repository; }

std::string Reference::str() const {
  std::string out = name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

std::string Reference::familiar() const {
  std::string out;
  if (registry == kDefaultRegistry) {
    out = repository.rfind("library/", 0) == 0 && repository.find('/', 8) == std::string::npos
              ? repository.substr(8)
              : repository;
  } else {
    out = name();
  }
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

Result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return Error("invalid reference format: empty reference");
  Reference ref;
  std::string_view rest = text;

  if (auto at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    if (digest.substr(0, 7) != "sha256:")
      return invalid(text, fmt::format("unsupported digest \"{}\" (want sha256:<64 hex>)", digest));
    if (!is_sha256_digest(digest))
      return invalid(text, fmt::format("invalid digest \"{}\" (want sha256:<64 lowercase hex>)", digest));
    ref.digest = std::string(digest);
    rest = rest.substr(0, at);
  }

  // A tag is a ':' after the last '/' (a ':' before it belongs to a port).
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!valid_tag(tag)) return invalid(text, fmt::format("invalid tag \"{}\"", tag));
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return invalid(text, "missing repository name");
  if (rest.size() > kMaxNameLength)
    return invalid(text, fmt::format("repository name longer than {} characters", kMaxNameLength));

  // The first component is a registry when it looks like a host: it has a
  // '.' or a ':' (port), is "localhost", or has upper case (repositories can't).
  std::string_view path = rest;
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || has_upper(first)) {
      if (!valid_domain(first)) return invalid(text, fmt::format("invalid registry \"{}\"", first));
      ref.registry = std::string(first);
      path = rest.substr(slash + 1);
    }
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io")
    ref.registry = std::string(kDefaultRegistry);

  if (path.empty()) return invalid(text, "missing repository name");
  if (has_upper(path))
    return invalid(text, fmt::format("repository name \"{}\" must be lowercase", path));
  size_t start = 0;
  for (;;) {
    size_t end = path.find('/', start);
    std::string_view comp = path.substr(start, end == std::string_view::npos ? path.npos : end - start);
    if (!valid_path_component(comp))
      return invalid(text, comp.empty() ? std::string("empty path component")
                                        : fmt::format("invalid repository name component \"{}\"", comp));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  ref.repository = std::string(path);
  if (ref.registry == kDefaultRegistry && ref.repository.find('/') == std::string::npos)
    ref.repository = "library/" + ref.repository;
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = std::string(kDefaultTag);
  return ref;
}

}  // namespace dfgen
