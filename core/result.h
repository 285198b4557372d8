// Errors as values. Result<T> holds either a T or an Error.
//
// An Error says where: a Dockerfile error carries a SourceRange and renders as
//   Dockerfile:12:5: message
//     COPY <EOF /src/main.go
//          ^
//   hint: ...
// A system error reads "verb object: cause" (errno kept in `sys_errno`).
// Context is added once per hop with Error::context(); an error is either
// returned or printed, never both.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace dfgen {

// 1-based line and column; column 0 means "the whole line".
struct SourcePos {
  int line = 0;
  int col = 0;
};

struct SourceRange {
  std::string file;         // as the user named it, e.g. "Dockerfile"
  SourcePos begin;
  SourcePos end;
  std::string line_text;    // the offending line, shown under the message
  bool valid() const { return begin.line > 0; }
};

struct Error {
  std::string message;
  SourceRange where;        // optional
  std::string hint;         // optional, "did you mean ..."
  int sys_errno = 0;        // optional
  int exit_code = 1;        // what a command that fails with this error exits with

  Error() = default;
  explicit Error(std::string msg) : message(std::move(msg)) {}
  Error(std::string msg, SourceRange range, std::string hint_text = {})
      : message(std::move(msg)), where(std::move(range)), hint(std::move(hint_text)) {}

  // "verb object: strerror(errno)"
  static Error sys(std::string what, int err = errno) {
    Error e(fmt::format("{}: {}", what, std::strerror(err)));
    e.sys_errno = err;
    return e;
  }
  // Prefix with what we were doing: "load image foo: <message>".
  Error context(const std::string& what) && {
    message = fmt::format("{}: {}", what, message);
    return std::move(*this);
  }
  Error context(const std::string& what) const& {
    Error copy = *this;
    return std::move(copy).context(what);
  }
  // The full text for a terminal: location, message, line, caret, hint.
  std::string render() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace dfgen

// Early return of an error: DFGEN_TRY(auto x, expr); or DFGEN_CHECK(expr) for Status.
#define DFGEN_CONCAT_INNER(a, b) a##b
#define DFGEN_CONCAT(a, b) DFGEN_CONCAT_INNER(a, b)
#define DFGEN_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                    \
  if (!tmp.ok()) return std::move(tmp).error(); \
  decl = std::move(tmp).value()
#define DFGEN_TRY(decl, expr) DFGEN_TRY_IMPL(DFGEN_CONCAT(dfgen_try_, __LINE__), decl, expr)
#define DFGEN_CHECK(expr)                                   \
  do {                                                      \
    auto dfgen_check_ = (expr);                             \
    if (!dfgen_check_.ok()) return std::move(dfgen_check_).error(); \
  } while (0)
