#include "tests/e2e/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <ctime>
#include <unistd.h>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "core/fs.h"

namespace dfgen::e2e {

namespace {
// The value of environment variable `name`, or `fallback` when unset or empty.
std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
}  // namespace

std::string source_dir() { return env_or("DFGEN_E2E_SOURCE_DIR", DFGEN_SOURCE_DIR); }
std::string build_dir() { return env_or("DFGEN_E2E_BUILD_DIR", DFGEN_BINARY_DIR); }

std::string store_dir() { return env_or("DFGEN_TEST_STORE", build_dir() + "/test-store"); }

Output sh(const std::string& command) {
  std::string env = "PATH=" + q(build_dir() + "/bin") + ":\"$PATH\" DFGEN_STORE=" + q(store_dir()) + " ";
  std::string full = "export " + env + "; ( " + command + " ) 2>&1";
  Output r;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string fixture_archive(const std::string& name) {
  Output made = sh("bash '" + source_dir() + "/scripts/fixtures.sh' " + name + " | tail -1");
  if (made.exit_code != 0) throw std::runtime_error("fixtures.sh " + name + " failed:\n" + made.output);
  std::string tar = made.output.substr(0, made.output.find_last_not_of("\n") + 1);
  return tar.substr(tar.find_last_of('\n') == std::string::npos ? 0 : tar.find_last_of('\n') + 1);
}

std::string fixture(const std::string& name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::string ref = "dfgen-fixtures/" + name + ":bookworm";
  Output have = sh("dfrun images | grep -q '^docker.io/" + ref + " '");
  if (have.exit_code == 0) return ref;
  std::string tar = fixture_archive(name);
  Output imp = sh("dfrun import '" + tar + "' -t " + ref);
  if (imp.exit_code != 0) throw std::runtime_error("import " + tar + " failed:\n" + imp.output);
  return ref;
}

std::string temp_dir(const std::string& name) {
  std::string base = build_dir() + "/e2e-tmp";
  auto dir = TempDir::create(base, name);
  if (!dir.ok()) throw std::runtime_error(dir.error().render());
  return dir->release();
}

void write_file(const std::string& path, const std::string& content) {
  (void)make_dirs(dirname_of(path));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

const std::string& nonce() {
  static const std::string n = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  return n;
}

std::string with_nonce(std::string text) {
  for (size_t at; (at = text.find("@NONCE@")) != std::string::npos;) text.replace(at, 7, nonce());
  return text;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void ensure_rootless_user(const std::string& user) {
  std::string script =
      "id -u " + user + " >/dev/null 2>&1 || useradd --no-create-home --shell /bin/sh " + user + "\n"
      "grep -q '^" + user + ":' /etc/subuid || usermod --add-subuids 300000-365535 " + user + "\n"
      "grep -q '^" + user + ":' /etc/subgid || usermod --add-subgids 300000-365535 " + user + "\n"
      // What udev gives most hosts; a rootless slirp4netns must open it.
      "chmod 0666 /dev/net/tun\n";
  Output o = sh("flock /tmp/dfgen-e2e-users.lock sh -ec " + q(script));
  if (o.exit_code != 0) throw std::runtime_error("set up user " + user + ":\n" + o.output);
}

namespace {
std::vector<std::string>& user_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
void remove_user_dirs() {
  for (const auto& d : user_dirs()) sh("rm -rf " + q(d));
}
}  // namespace

std::string user_dir(const std::string& user, const std::string& name) {
  Output made = sh("mktemp -d " + q("/tmp/dfgen-" + name + ".XXXXXX"));
  std::string dir = made.output.substr(0, made.output.find_last_not_of('\n') + 1);
  if (made.exit_code != 0 || dir.empty()) throw std::runtime_error("mktemp:\n" + made.output);
  if (user_dirs().empty()) std::atexit(remove_user_dirs);
  user_dirs().push_back(dir);
  Output o = sh("mkdir -p " + q(dir + "/bin") + " && cp \"$(command -v dfgen)\" \"$(command -v dfrun)\" " +
                q(dir + "/bin/") + " && chown -R " + q(user) + ": " + q(dir) + " && chmod 0755 " + q(dir));
  if (o.exit_code != 0) throw std::runtime_error("set up " + dir + ":\n" + o.output);
  return dir;
}

Output sh_as(const std::string& user, const std::string& dir, const std::string& command) {
  return sh("cd " + q(dir) + " && runuser -u " + q(user) + " -- env HOME=" + q(dir) + " PATH=" +
            q(dir + "/bin:/usr/local/bin:/usr/bin:/bin") + " DFGEN_STORE=" + q(dir + "/store") +
            " sh -c " + q(command));
}

int count_lines_with(const std::string& text, const std::string& needle) {
  int count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) ++count;
  return count;
}

}  // namespace dfgen::e2e
