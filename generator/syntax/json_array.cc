#include "generator/syntax/json_array.h"

#include <cmath>
#include <cstdlib>

#include "generator/syntax/unicode.h"

namespace dfgen::syntax {
namespace {

constexpr size_t kMaxNestingDepth = 10000;  // encoding/json's limit

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A single pass that validates the whole text and decodes the top-level strings.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : s_(text) {}

  JsonArray run() {
    JsonArray out;
    if (!scan_document(out.elements)) return out;
    if (overflow_) return out;
    out.status = non_string_ ? JsonArrayStatus::kNotStrings : JsonArrayStatus::kOk;
    if (non_string_) out.elements.clear();
    return out;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n'))
      ++pos_;
  }

  bool scan_document(std::vector<std::string>& elements) {
    std::vector<char> stack;  // '[' or '{' for each open container
    for (;;) {
      // A value is expected here.
      skip_ws();
      bool top_element = stack.size() == 1 && stack[0] == '[';
      char c = peek();
      if (c == '[' || c == '{') {
        if (stack.size() >= kMaxNestingDepth) return false;
        if (top_element) non_string_ = true;
        stack.push_back(c);
        ++pos_;
        skip_ws();
        if (peek() == (c == '[' ? ']' : '}')) {
          ++pos_;
          stack.pop_back();
        } else {
          if (c == '{' && !scan_key()) return false;
          continue;
        }
      } else if (c == '"') {
        std::string decoded;
        if (!scan_string(top_element ? &decoded : nullptr)) return false;
        if (top_element) elements.push_back(std::move(decoded));
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!scan_number()) return false;
        if (top_element) non_string_ = true;
      } else if (!scan_literal()) {
        return false;
      } else if (top_element) {
        non_string_ = true;
      }
      // After a value: close containers or move to the next element.
      for (;;) {
        if (stack.empty()) {
          skip_ws();
          return at_end();
        }
        skip_ws();
        char close = stack.back() == '[' ? ']' : '}';
        if (peek() == close) {
          ++pos_;
          stack.pop_back();
          continue;
        }
        if (peek() != ',') return false;
        ++pos_;
        if (stack.back() == '{' && !scan_key()) return false;
        break;
      }
    }
  }

  // `"key" :` inside an object.
  bool scan_key() {
    skip_ws();
    if (peek() != '"' || !scan_string(nullptr)) return false;
    skip_ws();
    if (peek() != ':') return false;
    ++pos_;
    return true;
  }

  bool scan_literal() {
    for (std::string_view word : {"true", "false", "null"}) {
      if (s_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return true;
      }
    }
    return false;
  }

  bool scan_digits() {
    size_t start = pos_;
    while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  bool scan_number() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (!scan_digits()) {
      return false;
    }
    if (peek() == '.') {
      ++pos_;
      if (!scan_digits()) return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!scan_digits()) return false;
    }
    std::string number(s_.substr(start, pos_ - start));
    if (std::isinf(std::strtod(number.c_str(), nullptr))) overflow_ = true;
    return true;
  }

  int read_u4(size_t at) const {  // the XXXX of \uXXXX at `at`, or -1
    if (at + 4 > s_.size()) return -1;
    int value = 0;
    for (size_t i = at; i < at + 4; ++i) {
      int h = hex_value(s_[i]);
      if (h < 0) return -1;
      value = value * 16 + h;
    }
    return value;
  }

  // Validates a string starting at '"'; decodes it into `out` when given.
  bool scan_string(std::string* out) {
    ++pos_;
    for (;;) {
      if (at_end()) return false;
      unsigned char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!scan_escape(out)) return false;
        continue;
      }
      DecodedRune d = decode_rune(s_.substr(pos_));
      if (out) append_utf8(*out, d.rune);
      pos_ += d.width;
    }
  }

  bool scan_escape(std::string* out) {
    ++pos_;
    if (at_end()) return false;
    char e = s_[pos_++];
    char simple = 0;
    switch (e) {
      case '"': simple = '"'; break;
      case '\\': simple = '\\'; break;
      case '/': simple = '/'; break;
      case 'b': simple = '\b'; break;
      case 'f': simple = '\f'; break;
      case 'n': simple = '\n'; break;
      case 'r': simple = '\r'; break;
      case 't': simple = '\t'; break;
      case 'u': break;
      default: return false;
    }
    if (simple) {
      if (out) *out += simple;
      return true;
    }
    int rr = read_u4(pos_);
    if (rr < 0) return false;
    pos_ += 4;
    char32_t rune = static_cast<char32_t>(rr);
    if (rr >= 0xD800 && rr < 0xE000) {
      rune = kRuneError;
      // A high surrogate followed by an escaped low one makes a pair.
      if (rr < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
        int low = read_u4(pos_ + 2);
        if (low >= 0xDC00 && low < 0xE000) {
          rune = 0x10000 + ((static_cast<char32_t>(rr) - 0xD800) << 10) + (low - 0xDC00);
          pos_ += 6;
        }
      }
    }
    if (out) append_utf8(*out, rune);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  bool non_string_ = false;
  bool overflow_ = false;
};

}  // namespace

JsonArray parse_json_array(std::string_view text) {
  if (text.empty() || text[0] != '[') return {};
  return JsonScanner(text).run();
}

}  // namespace dfgen::syntax
