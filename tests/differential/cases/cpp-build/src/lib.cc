#include "lib.h"
#include <algorithm>
#include <cctype>
std::string greeting(const std::string& name) {
  std::string up = name;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  return "hello, " + up;
}
