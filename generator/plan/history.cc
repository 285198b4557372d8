#include "generator/plan/history.h"

#include <fmt/format.h>

namespace dfgen::plan::detail {

namespace {

// Go's strconv.Quote for the ASCII cases that occur in commands.
std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string go_quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? " " : "") + go_quote(items[i]);
  return out + "]";
}

std::string go_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? " " : "") + items[i];
  return out + "]";
}

std::string clean_path(const std::string& path) {
  if (path.empty()) return ".";
  bool rooted = path[0] == '/';
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t slash = path.find('/', i);
    std::string part = path.substr(i, slash == std::string::npos ? std::string::npos : slash - i);
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..")
        parts.pop_back();
      else if (!rooted)
        parts.push_back("..");
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    if (slash == std::string::npos) break;
    i = slash + 1;
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) out += (k ? "/" : "") + parts[k];
  return out.empty() ? "." : out;
}

std::string resolve_in_image(const std::string& workdir, const std::string& path) {
  std::string p = path;
  if (p.empty() || p == ".") p = "./";
  bool trailing = p.back() == '/' || (p.size() >= 2 && p.compare(p.size() - 2, 2, "/.") == 0);
  std::string base = workdir.empty() ? "/" : workdir;
  std::string joined = p[0] == '/' ? clean_path(p) : clean_path(base + "/" + p);
  if (trailing && joined != "/") joined += "/";
  return joined;
}

std::string context_relative(const std::string& path) {
  std::string cleaned = clean_path("/" + path);
  return cleaned == "/" ? "." : cleaned.substr(1);
}

std::string shorten(const std::string& text, size_t width) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() <= width) return line;
  size_t cut = width - 3;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return line.substr(0, cut) + "...";
}

}  // namespace dfgen::plan::detail
