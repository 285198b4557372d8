// echo-cli PORT WORDS...: sends WORDS to the echo server on 127.0.0.1:PORT
// and prints its answer.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "net.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: echo-cli PORT WORDS...\n");
    return 2;
  }
  std::string msg;
  for (int i = 2; i < argc; ++i) msg += (i > 2 ? " " : "") + std::string(argv[i]);
  int fd = monorepo::connect_loopback(std::atoi(argv[1]), 3000);
  if (fd < 0) {
    std::perror("echo-cli: connect");
    return 1;
  }
  std::string reply;
  if (!monorepo::write_all(fd, msg + "\n") || !monorepo::read_line(fd, reply)) {
    std::fprintf(stderr, "echo-cli: no answer\n");
    return 1;
  }
  std::printf("%s\n", reply.c_str());
  ::close(fd);
  return 0;
}
