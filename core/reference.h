// Image references with Docker's naming rules:
//   golang             -> docker.io/library/golang:latest
//   golang:1.21        -> docker.io/library/golang:1.21
//   localhost:5000/x@sha256:...  (registry with port, digest)
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace dfgen {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000"
  std::string repository;  // "library/golang"
  std::string tag;         // "1.21" (empty when only a digest was given and no tag)
  std::string digest;      // "sha256:..." or empty

  // Full normalized name: "docker.io/library/golang:1.21" (with "@digest" if set).
  std::string str() const;
  // Without tag/digest: "docker.io/library/golang".
  std::string name() const;
  // The short form people write: "golang:1.21", "localhost:5000/x:y".
  std::string familiar() const;
};

// Parses and normalizes. Errors name what is wrong ("invalid reference format: ...").
Result<Reference> parse_reference(std::string_view text);

}  // namespace dfgen
