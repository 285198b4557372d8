#include "core/json.h"

#include "core/fs.h"

namespace dfgen {

Result<Json> parse_json(std::string_view text, const std::string& what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(fmt::format("parse {}: not valid JSON", what));
  return j;
}

Result<Json> read_json_file(const std::string& path) {
  DFGEN_TRY(std::string text, read_file(path));
  return parse_json(text, path);
}

}  // namespace dfgen
