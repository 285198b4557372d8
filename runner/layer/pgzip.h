// gzip on several threads, pigz style: the input is cut into fixed-size
// blocks, each compressed by its own raw deflate stream (primed with the last
// 32 KiB of the block before it) that ends on a byte boundary (Z_SYNC_FLUSH;
// the last block with Z_FINISH). The blocks are concatenated in order into ONE
// gzip member, whose CRC-32 is combined from the blocks' (crc32_combine) and
// whose ISIZE is the total length. Every block's bytes depend only on its
// input, the dictionary and the level, so the output is the same whatever
// the thread count and the timing: a layer digest never depends on the
// machine. The header carries no name and mtime 0. A block that does not
// compress (its first 64 KiB, deflated alone at level 1, keep 99 % of their
// size: random or already compressed data) is written as stored deflate
// blocks, at memory speed; at the default level, one that compresses poorly
// (75 %) is deflated with runs only (Z_RLE): decided from its bytes alone.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "core/result.h"

namespace dfgen::layer {

class ParallelGzip {
 public:
  // Receives the compressed stream, in order, always on the caller's thread.
  using Sink = std::function<Status(const void* data, size_t size)>;

  static constexpr size_t kDefaultBlock = 1 << 20;

  // threads <= 0: one per CPU (at most 8). threads == 1 compresses on the
  // caller's thread, same bytes.
  explicit ParallelGzip(Sink sink, int threads = 0, size_t block_size = kDefaultBlock, int level = -1);
  ~ParallelGzip();
  ParallelGzip(const ParallelGzip&) = delete;
  ParallelGzip& operator=(const ParallelGzip&) = delete;

  Status write(const void* data, size_t size);
  // Ends the member (last block, trailer). No write() after it.
  Status finish();

  int threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfgen::layer
