// Text helpers shared by the plan: BuildKit's created_by formats (they print
// Go values with %q / %v), paths inside the image, and short descriptions.
#pragma once

#include <string>
#include <vector>

namespace dfgen::plan::detail {

// Go's %q of a []string: ["a" "b c"].
std::string go_quoted_list(const std::vector<std::string>& items);
// Go's %v of a []string: [a b c].
std::string go_list(const std::vector<std::string>& items);

// Lexical clean of a slash path (".", "..", "//"), as Go's path.Clean.
std::string clean_path(const std::string& path);
// `path` inside the image resolved against `workdir`, keeping a trailing "/".
std::string resolve_in_image(const std::string& workdir, const std::string& path);
// A context source pattern made relative to the context root ("./a" -> "a", "/" -> ".").
std::string context_relative(const std::string& path);

// Cuts to at most `width` bytes ("..." at the end), on a UTF-8 boundary, first line only.
std::string shorten(const std::string& text, size_t width = 80);

}  // namespace dfgen::plan::detail
