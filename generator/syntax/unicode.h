// The slices of Go's unicode, utf8 and strconv behaviour the parser depends on.
//
// BuildKit's parser is written in Go, and what counts as a space, a letter or a
// printable rune decides how lines split and how the dump quotes arguments.
// These helpers reproduce Go's answers so our dump matches byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dfgen::syntax {

constexpr char32_t kRuneError = 0xFFFD;

struct DecodedRune {
  char32_t rune;
  int width;  // bytes consumed; an invalid byte gives {kRuneError, 1}
};

// Like Go's utf8.DecodeRuneInString: strict UTF-8 (no surrogates, no overlongs).
DecodedRune decode_rune(std::string_view s);
void append_utf8(std::string& out, char32_t r);

bool is_space(char32_t r);   // unicode.IsSpace
bool is_print(char32_t r);   // unicode.IsPrint (strconv.IsPrint)
bool is_letter(char32_t r);  // unicode.IsLetter
bool is_digit(char32_t r);   // unicode.IsDigit

// strings.ToLower (one-to-one rune mapping, as Go does for valid UTF-8).
std::string to_lower(std::string_view s);
// strings.TrimSpace / TrimLeftFunc(unicode.IsSpace).
std::string_view trim_space(std::string_view s);
std::string_view trim_left_space(std::string_view s);

// strconv.Quote: "..." with Go escapes (\", \\, \n, \x00, \u00a0, ...).
std::string go_quote(std::string_view s);

}  // namespace dfgen::syntax
