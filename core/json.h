// JSON through nlohmann::json. Objects keep keys sorted, so dump() is
// canonical: the same value always gives the same bytes (and digest).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace dfgen {

using Json = nlohmann::json;

// Parses `text`; `what` names the source in the error ("config blob sha256:..").
Result<Json> parse_json(std::string_view text, const std::string& what);
Result<Json> read_json_file(const std::string& path);
// Compact, sorted keys, UTF-8 as is: the form digests are taken of.
inline std::string canonical_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace dfgen
