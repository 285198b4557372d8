#include "generator/syntax/unicode.h"

#include <algorithm>
#include <iterator>

namespace dfgen::syntax {
namespace {

struct RuneRange {
  char32_t lo, hi;
};
struct RunePair {
  char32_t from, to;
};

#include "generator/syntax/unicode_tables.inc"

template <size_t N>
bool in_ranges(const RuneRange (&table)[N], char32_t r) {
  auto it = std::upper_bound(std::begin(table), std::end(table), r,
                             [](char32_t v, const RuneRange& range) { return v < range.lo; });
  return it != std::begin(table) && r <= std::prev(it)->hi;
}

char32_t lower_rune(char32_t r) {
  if (r < 0x80) return (r >= 'A' && r <= 'Z') ? r + 32 : r;
  auto it = std::lower_bound(std::begin(kLowerPairs), std::end(kLowerPairs), r,
                             [](const RunePair& p, char32_t v) { return p.from < v; });
  return (it != std::end(kLowerPairs) && it->from == r) ? it->to : r;
}

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, uint32_t value, int digits) {
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xF];
}

}  // namespace

DecodedRune decode_rune(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (s.empty()) return {kRuneError, 0};
  unsigned char b0 = byte(0);
  if (b0 < 0x80) return {b0, 1};
  int need;
  char32_t r, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, r = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, r = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, r = b0 & 0x07, min = 0x10000;
  } else {
    return {kRuneError, 1};
  }
  if (s.size() < static_cast<size_t>(need) + 1) return {kRuneError, 1};
  for (int i = 1; i <= need; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return {kRuneError, 1};
    r = (r << 6) | (byte(i) & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return {kRuneError, 1};
  return {r, need + 1};
}

void append_utf8(std::string& out, char32_t r) {
  if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = kRuneError;
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

bool is_space(char32_t r) {
  switch (r) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

bool is_print(char32_t r) { return in_ranges(kPrintRanges, r); }
bool is_letter(char32_t r) {
  if (r < 0x80) return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
  return in_ranges(kLetterRanges, r);
}
bool is_digit(char32_t r) {
  if (r < 0x80) return r >= '0' && r <= '9';
  return in_ranges(kDigitRanges, r);
}

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    DecodedRune d = decode_rune(s);
    append_utf8(out, lower_rune(d.rune));  // like Go, an invalid byte becomes U+FFFD
    s.remove_prefix(d.width);
  }
  return out;
}

std::string_view trim_left_space(std::string_view s) {
  while (!s.empty()) {
    DecodedRune d = decode_rune(s);
    if (!is_space(d.rune)) break;
    s.remove_prefix(d.width);
  }
  return s;
}

std::string_view trim_space(std::string_view s) {
  s = trim_left_space(s);
  // Walk back over whole runes: find the last rune start and test it.
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    DecodedRune d = decode_rune(s.substr(start));
    if (start + d.width != s.size()) {  // not a whole rune: an invalid byte
      d = {kRuneError, 1};
      start = s.size() - 1;
    }
    if (!is_space(d.rune)) break;
    s.remove_suffix(s.size() - start);
  }
  return s;
}

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  while (!s.empty()) {
    DecodedRune d = decode_rune(s);
    if (d.rune == kRuneError && d.width == 1) {
      out += "\\x";
      append_hex(out, static_cast<unsigned char>(s[0]), 2);
    } else if (d.rune == '"' || d.rune == '\\') {
      out += '\\';
      out += static_cast<char>(d.rune);
    } else if (is_print(d.rune)) {
      out.append(s.substr(0, d.width));
    } else {
      switch (d.rune) {
        case '\a': out += "\\a"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        default:
          if (d.rune < ' ' || d.rune == 0x7F) {
            out += "\\x";
            append_hex(out, d.rune, 2);
          } else if (d.rune < 0x10000) {
            out += "\\u";
            append_hex(out, d.rune, 4);
          } else {
            out += "\\U";
            append_hex(out, d.rune, 8);
          }
      }
    }
    s.remove_prefix(d.width);
  }
  out += '"';
  return out;
}

}  // namespace dfgen::syntax
