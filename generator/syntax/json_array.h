// Exec form: a JSON array of strings, decoded the way Go's encoding/json does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dfgen::syntax {

enum class JsonArrayStatus {
  kNotJson,     // not a valid JSON array: BuildKit falls back to shell form
  kNotStrings,  // valid JSON, but an element is not a string: an error
  kOk,
};

struct JsonArray {
  JsonArrayStatus status = JsonArrayStatus::kNotJson;
  std::vector<std::string> elements;  // decoded, when kOk
};

// `text` must be the whole argument text (leading spaces already removed).
// Matches json.Unmarshal into []any: whitespace is " \t\r\n", invalid UTF-8 and
// lone surrogates decode to U+FFFD, nesting deeper than 10000 is a syntax error,
// and a number that overflows float64 makes the whole array "not JSON".
JsonArray parse_json_array(std::string_view text);

}  // namespace dfgen::syntax
