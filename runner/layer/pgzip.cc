#include "runner/layer/pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dfgen::layer {

namespace {

constexpr size_t kDictSize = 32 * 1024;

struct Block {
  std::vector<unsigned char> input;
  std::vector<unsigned char> dict;   // last bytes of the block before (empty for the first)
  bool last = false;
  // Results.
  std::vector<unsigned char> output;
  uLong crc = 0;
  std::string error;
  bool done = false;
};

// Each block's first kProbe bytes are deflated alone at level 1 first. When
// they come out at least kStoredRatio of their size (random or already
// compressed data) the block is written as stored deflate blocks: deflating
// it would cost the most CPU of any input and gain nothing. At the default
// level, a block that compresses poorly (at least kFastRatio: say small
// compressed or random files between tar headers) is deflated with runs
// only (Z_RLE: the zeros of tar headers and padding go, no match search),
// about 3x faster than level 6 or 1 there for ~3 % more bytes; one that
// compresses well (text, binaries, zeros) gets level 6. The choice depends
// only on the block's bytes, so the output still depends only on the input.
constexpr size_t kProbe = 64 << 10;
constexpr double kStoredRatio = 0.99;
constexpr double kFastRatio = 0.75;

// Raw deflate streams, reset per block: one at the level asked for, one
// storing (level 0), one of runs only (the default level's poorly
// compressible blocks), one probing (level 1).
class Deflater {
 public:
  explicit Deflater(int level) : adaptive_(level == Z_DEFAULT_COMPRESSION) {
    ok_ = deflateInit2(&z_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK &&
          deflateInit2(&stored_, 0, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK &&
          deflateInit2(&fast_, 1, Z_DEFLATED, -15, 8, Z_RLE) == Z_OK &&
          deflateInit2(&probe_, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    deflateEnd(&z_);
    deflateEnd(&stored_);
    deflateEnd(&fast_);
    deflateEnd(&probe_);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  void run(Block& b) {
    b.crc = crc32(0L, b.input.data(), static_cast<uInt>(b.input.size()));
    if (!ok_) {
      b.error = "gzip: deflateInit2 failed";
      return;
    }
    double ratio = probe_ratio(b);
    z_stream& z = ratio >= kStoredRatio ? stored_ : adaptive_ && ratio >= kFastRatio ? fast_ : z_;
    if (deflateReset(&z) != Z_OK) {
      b.error = "gzip: deflateReset failed";
      return;
    }
    if (!b.dict.empty() &&
        deflateSetDictionary(&z, b.dict.data(), static_cast<uInt>(b.dict.size())) != Z_OK) {
      b.error = "gzip: deflateSetDictionary failed";
      return;
    }
    b.output.resize(deflateBound(&z, b.input.size()) + 64);
    z.next_in = b.input.data();
    z.avail_in = static_cast<uInt>(b.input.size());
    size_t produced = 0;
    int flush = b.last ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
      if (produced == b.output.size()) b.output.resize(b.output.size() * 2);
      z.next_out = b.output.data() + produced;
      z.avail_out = static_cast<uInt>(b.output.size() - produced);
      int rc = deflate(&z, flush);
      produced = b.output.size() - z.avail_out;
      if (rc == Z_STREAM_ERROR) {
        b.error = "gzip: deflate failed";
        return;
      }
      // Done when all input is in and the flush completed (room left over).
      if (b.last ? rc == Z_STREAM_END : (z.avail_in == 0 && z.avail_out != 0)) break;
    }
    b.output.resize(produced);
  }

 private:
  // Compressed size / size of the block's first kProbe bytes at level 1;
  // 0 (compress as asked) for a block shorter than that.
  double probe_ratio(const Block& b) {
    size_t n = std::min(b.input.size(), kProbe);
    if (n < kProbe || deflateReset(&probe_) != Z_OK) return 0;
    probe_out_.resize(deflateBound(&probe_, n));
    probe_.next_in = const_cast<Bytef*>(b.input.data());
    probe_.avail_in = static_cast<uInt>(n);
    probe_.next_out = probe_out_.data();
    probe_.avail_out = static_cast<uInt>(probe_out_.size());
    if (deflate(&probe_, Z_FINISH) != Z_STREAM_END) return 0;
    return static_cast<double>(probe_out_.size() - probe_.avail_out) / static_cast<double>(n);
  }

  bool adaptive_;
  z_stream z_{}, stored_{}, fast_{}, probe_{};
  std::vector<unsigned char> probe_out_;
  bool ok_ = false;
};

}  // namespace

struct ParallelGzip::Impl {
  Sink sink;
  int threads = 1;
  size_t block_size = ParallelGzip::kDefaultBlock;
  int level = -1;

  std::vector<unsigned char> current;   // the block being filled
  std::vector<unsigned char> dict;      // tail of the last submitted block
  uLong crc = 0;
  uint64_t total = 0;
  bool header_written = false;
  bool finished = false;
  Status status = ok_status();

  // Inline mode (threads == 1).
  std::unique_ptr<Deflater> inline_deflater;

  // Thread mode.
  std::mutex mu;
  std::condition_variable work_cv;   // workers wait for blocks
  std::condition_variable done_cv;   // the caller waits for the oldest block
  std::deque<std::shared_ptr<Block>> todo;       // not yet taken by a worker
  std::deque<std::shared_ptr<Block>> in_order;   // submitted, not yet written out
  bool stopping = false;
  std::vector<std::thread> workers;

  ~Impl() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    work_cv.notify_all();
    for (auto& t : workers) t.join();
  }

  void start() {
    if (threads == 1) {
      inline_deflater = std::make_unique<Deflater>(level);
      return;
    }
    for (int i = 0; i < threads; ++i)
      workers.emplace_back([this] { worker(); });
  }

  void worker() {
    Deflater d(level);
    for (;;) {
      std::shared_ptr<Block> b;
      {
        std::unique_lock lock(mu);
        work_cv.wait(lock, [&] { return stopping || !todo.empty(); });
        if (todo.empty()) return;
        b = std::move(todo.front());
        todo.pop_front();
      }
      d.run(*b);
      {
        std::lock_guard lock(mu);
        b->done = true;
      }
      done_cv.notify_all();
    }
  }

  Status emit(const void* data, size_t size) {
    if (!size) return ok_status();
    return sink(data, size);
  }

  Status write_header() {
    if (header_written) return ok_status();
    header_written = true;
    // ID1 ID2 CM FLG MTIME(4) XFL OS: no name, mtime 0, OS "Unix" as zlib writes.
    int xfl = level == 9 ? 2 : (level == 1 ? 4 : 0);
    const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, static_cast<unsigned char>(xfl), 3};
    return emit(header, sizeof header);
  }

  // A block's output goes out; its CRC joins the member's.
  Status write_block(Block& b) {
    if (!b.error.empty()) return Error(b.error);
    crc = crc32_combine(crc, b.crc, static_cast<z_off_t>(b.input.size()));
    total += b.input.size();
    return emit(b.output.data(), b.output.size());
  }

  Status submit(bool last) {
    auto b = std::make_shared<Block>();
    b->input.swap(current);
    b->dict = dict;
    b->last = last;
    if (!last) {
      size_t n = std::min(kDictSize, b->input.size());
      dict.assign(b->input.end() - static_cast<std::ptrdiff_t>(n), b->input.end());
    }
    current.clear();
    current.reserve(block_size);
    DFGEN_CHECK(write_header());
    if (inline_deflater) {
      inline_deflater->run(*b);
      return write_block(*b);
    }
    {
      std::lock_guard lock(mu);
      todo.push_back(b);
      in_order.push_back(b);
    }
    work_cv.notify_one();
    // Keep at most two blocks per thread in flight: bounded memory.
    return drain(last ? 0 : static_cast<size_t>(threads) * 2);
  }

  // Writes finished blocks in order until at most `keep` are in flight.
  Status drain(size_t keep) {
    for (;;) {
      std::shared_ptr<Block> b;
      {
        std::unique_lock lock(mu);
        if (in_order.size() <= keep) {
          // Write whatever is already done without waiting.
          if (in_order.empty() || !in_order.front()->done) return ok_status();
        } else {
          done_cv.wait(lock, [&] { return in_order.front()->done; });
        }
        b = std::move(in_order.front());
        in_order.pop_front();
      }
      DFGEN_CHECK(write_block(*b));
    }
  }
};

ParallelGzip::ParallelGzip(Sink sink, int threads, size_t block_size, int level)
    : impl_(std::make_unique<Impl>()) {
  if (threads <= 0) threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  impl_->sink = std::move(sink);
  impl_->threads = threads;
  impl_->block_size = std::max<size_t>(block_size, kDictSize);
  impl_->level = level;
  impl_->current.reserve(impl_->block_size);
  impl_->start();
}

ParallelGzip::~ParallelGzip() = default;

int ParallelGzip::threads() const { return impl_->threads; }

Status ParallelGzip::write(const void* data, size_t size) {
  Impl& s = *impl_;
  if (s.finished) return Error("gzip: write after finish");
  DFGEN_CHECK(s.status);
  const auto* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    size_t n = std::min(size, s.block_size - s.current.size());
    s.current.insert(s.current.end(), p, p + n);
    p += n;
    size -= n;
    if (s.current.size() == s.block_size) {
      Status st = s.submit(false);
      if (!st.ok()) {
        s.status = st;
        return st;
      }
    }
  }
  return ok_status();
}

Status ParallelGzip::finish() {
  Impl& s = *impl_;
  if (s.finished) return Error("gzip: finished twice");
  DFGEN_CHECK(s.status);
  s.finished = true;
  DFGEN_CHECK(s.submit(true));
  unsigned char trailer[8];
  for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(s.crc >> (8 * i));
  for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(s.total >> (8 * i));
  return s.emit(trailer, sizeof trailer);
}

}  // namespace dfgen::layer
