#include "runner/step/ssh_mount.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace dfgen::step {
namespace {

// A sockaddr_un for `path`. Paths longer than sun_path go through an O_PATH
// fd of their directory (/proc/self/fd/N/name), which `dir_fd` keeps open.
Result<sockaddr_un> unix_address(const std::string& path, UniqueFd& dir_fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = path;
  if (name.size() >= sizeof addr.sun_path) {
    dir_fd.reset(::open(dirname_of(path).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) return Error::sys("open " + dirname_of(path));
    name = fmt::format("/proc/self/fd/{}/{}", dir_fd.get(), basename_of(path));
    if (name.size() >= sizeof addr.sun_path) return Error(fmt::format("socket name too long: {}", path));
  }
  std::memcpy(addr.sun_path, name.c_str(), name.size() + 1);
  return addr;
}

Result<UniqueFd> connect_unix(const std::string& path) {
  UniqueFd dir;
  DFGEN_TRY(sockaddr_un addr, unix_address(path, dir));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::sys("connect to " + path);
  return fd;
}

bool send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

Result<uint32_t> parse_number(const std::string& text, int base, uint32_t fallback, uint32_t max, const char* what) {
  if (text.empty()) return fallback;
  char* end = nullptr;
  unsigned long v = std::strtoul(text.c_str(), &end, base);
  if (*end != '\0' || v > max) return Error(fmt::format("invalid ssh mount {} \"{}\"", what, text));
  return static_cast<uint32_t>(v);
}

std::string str(const Json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// io.ssh of the spec file: {"ID": {"src": SOCKET} | {"env": VAR}}.
Result<Json> ssh_sources(const Spec& spec) {
  if (spec.path.empty()) return Json::object();
  DFGEN_TRY(Json j, read_json_file(spec.path));
  Json s = j.value("io", Json::object()).value("ssh", Json::object());
  return s.is_object() ? s : Json::object();
}

// The agent's socket for `id` now, or "" when it was not given or is gone.
std::string agent_socket(const Json& sources, const std::string& id) {
  if (!sources.contains(id)) return "";
  const Json& s = sources[id];
  std::string path;
  if (s.contains("src") && s["src"].is_string()) path = s["src"].get<std::string>();
  if (s.contains("env") && s["env"].is_string())
    if (const char* v = std::getenv(s["env"].get<std::string>().c_str())) path = v;
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return "";
  return path;
}

bool env_sets(const Json& op, const std::string& name) {
  for (const auto& e : op.value("env", Json::array()))
    if (e.is_string() && e.get<std::string>().starts_with(name + "=")) return true;
  return false;
}

}  // namespace

Result<std::unique_ptr<SshAgentProxy>> SshAgentProxy::start(const std::string& agent, const std::string& path,
                                                            mode_t mode, uid_t uid, gid_t gid) {
  std::unique_ptr<SshAgentProxy> p(new SshAgentProxy());
  p->agent_ = agent;
  UniqueFd dir;
  DFGEN_TRY(sockaddr_un addr, unix_address(path, dir));
  p->listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!p->listen_) return Error::sys("socket");
  if (::bind(p->listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::sys("bind " + path);
  if (::chown(path.c_str(), uid, gid) != 0) return Error::sys("chown " + path);
  if (::chmod(path.c_str(), mode) != 0) return Error::sys("chmod " + path);
  if (::listen(p->listen_.get(), 16) != 0) return Error::sys("listen on " + path);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::sys("pipe");
  p->stop_read_.reset(fds[0]);
  p->stop_write_.reset(fds[1]);
  p->thread_ = std::thread(&SshAgentProxy::loop, p.get());
  return p;
}

SshAgentProxy::~SshAgentProxy() {
  stop_write_.reset();   // the loop sees the pipe's end
  if (thread_.joinable()) thread_.join();
}

// poll: the stop pipe, the listening socket, then both ends of every
// connection. A read from one end is written whole to the other; an end that
// closes or fails closes its connection.
void SshAgentProxy::loop() {
  struct Connection {
    UniqueFd client, agent;
  };
  std::vector<Connection> conns;
  for (;;) {
    std::vector<pollfd> fds = {{stop_read_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
    for (const auto& c : conns) {
      fds.push_back({c.client.get(), POLLIN, 0});
      fds.push_back({c.agent.get(), POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    std::vector<bool> closed(conns.size(), false);
    for (size_t i = 0; i < conns.size(); ++i)
      for (int side = 0; side < 2 && !closed[i]; ++side) {
        if (fds[2 + 2 * i + side].revents == 0) continue;
        int from = side == 0 ? conns[i].client.get() : conns[i].agent.get();
        int to = side == 0 ? conns[i].agent.get() : conns[i].client.get();
        char buf[16384];
        ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || !send_all(to, buf, static_cast<size_t>(n))) closed[i] = true;
      }
    for (size_t i = conns.size(); i-- > 0;)
      if (closed[i]) conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
    if (fds[1].revents & POLLIN) {
      UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!client) continue;
      auto agent = connect_unix(agent_);   // the agent gone: the client sees EOF
      if (agent.ok()) conns.push_back({std::move(client), std::move(*agent)});
    }
  }
}

Status add_ssh_mount(const Json& m, const Spec& spec, const std::string& dir, SshMounts& ssh,
                     std::vector<sandbox::BindMount>& binds, std::vector<std::string>& env) {
  int index = ssh.count++;
  std::string id = str(m, "id").empty() ? "default" : str(m, "id");
  std::string target = str(m, "target");
  if (target.empty()) target = fmt::format("/run/buildkit/ssh_agent.{}", index);
  DFGEN_TRY(uint32_t mode, parse_number(str(m, "mode"), 8, 0600, 07777, "mode"));
  DFGEN_TRY(uint32_t uid, parse_number(str(m, "uid"), 10, 0, UINT32_MAX, "uid"));
  DFGEN_TRY(uint32_t gid, parse_number(str(m, "gid"), 10, 0, UINT32_MAX, "gid"));
  // As BuildKit: the first ssh mount is the agent of SSH_AUTH_SOCK.
  if (index == 0 && !env_sets(spec.op, "SSH_AUTH_SOCK")) env.push_back("SSH_AUTH_SOCK=" + target);

  DFGEN_TRY(Json sources, ssh_sources(spec));
  std::string agent = agent_socket(sources, id);
  if (agent.empty()) {
    if (m.value("required", false))
      return Error(fmt::format("ssh agent {}: required but not provided (dfgen --ssh {}[=SOCKET], with an "
                               "ssh-agent running)", id, id));
    return ok_status();   // as BuildKit: an optional agent that is missing is not mounted
  }
  DFGEN_CHECK(make_dirs(dir));
  std::string socket = path_join(dir, "agent");
  DFGEN_TRY(auto proxy, SshAgentProxy::start(agent, socket, mode, uid, gid));
  ssh.proxies.push_back(std::move(proxy));
  binds.push_back({socket, target, true});
  return ok_status();
}

}  // namespace dfgen::step
