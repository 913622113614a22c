// libFuzzer target for the Kerberos decoder and the krb5 app-layer parser: any input must parse
// without a memory error, every committed event must be balanced JSON, and (for stream input
// without gaps) feeding the same bytes one at a time must give the same events.
//
// Input: byte 0 picks the mode (bit 0: datagrams instead of stream data; bit 1: larger chunks);
// then each control byte c is followed by a chunk: direction = c & 1, gap = c & 2 (stream mode),
// length = (c >> 2) + 1 (times 61 with bit 1 of the mode).
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/krb5.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

using vigil::proto::Direction;
using vigil::proto::JsonWriter;
using vigil::proto::Krb5Message;
using vigil::proto::Krb5Parser;
using vigil::proto::TextBuilder;
using vigil::proto::testing::CollectSink;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Chunk {
  Direction dir;
  bool gap;
  std::span<const uint8_t> bytes;
  uint32_t gap_len;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);

  // The decoder on the whole input.
  Krb5Message m;
  if (vigil::proto::ParseKrb5(in, &m)) {
    Check(m.etype_count <= vigil::proto::kKrb5MaxEtypes);
    Check(m.cname.len <= 128 && m.sname.len <= 128 && m.realm.len <= 128);
    char buf[4096];
    JsonWriter w(buf, sizeof buf);
    vigil::proto::WriteKrb5Json(m, 10, w);
    vigil::proto::WriteKrb5SmbJson(m, w);
    Check(w.depth() == 0);
    TextBuilder t;
    vigil::proto::AppendKrb5Message(m, t);
  } else {
    Check(m.msg_type == 0);
  }
  (void)Krb5Parser::Probe(Direction::kToServer, in);

  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const bool datagrams = (mode & 1) != 0;
  const size_t scale = (mode & 2) != 0 ? 61 : 1;
  Chunk chunks[256];
  size_t nchunks = 0;
  bool any_gap = false;
  for (size_t pos = 1; pos < size && nchunks < 256;) {
    const uint8_t c = data[pos++];
    const size_t len = ((c >> 2) + 1u) * scale;
    Chunk& ch = chunks[nchunks++];
    ch.dir = (c & 1) != 0 ? Direction::kToClient : Direction::kToServer;
    ch.gap = !datagrams && (c & 2) != 0;
    if (ch.gap) {
      ch.gap_len = static_cast<uint32_t>(len);
      any_gap = true;
    } else {
      const size_t n = len < size - pos ? len : size - pos;
      ch.bytes = in.subspan(pos, n);
      pos += n;
    }
  }

  Krb5Parser p;
  CollectSink sink;
  sink.inspect = true;  // the signature engine's buffers are assembled too
  for (size_t i = 0; i < nchunks; ++i) {
    const Chunk& ch = chunks[i];
    if (ch.gap) {
      p.OnGap(ch.dir, ch.gap_len, sink);
    } else if (datagrams) {
      p.OnDatagram(ch.dir, ch.bytes, sink);
    } else {
      p.OnData(ch.dir, ch.bytes, sink);
    }
  }
  p.OnEnd(sink);
  Check(!sink.unbalanced);

  if (!datagrams && !any_gap) {
    // Byte at a time: the same events.
    Krb5Parser q;
    CollectSink sink2;
    for (size_t i = 0; i < nchunks; ++i) {
      for (size_t j = 0; j < chunks[i].bytes.size(); ++j) {
        q.OnData(chunks[i].dir, chunks[i].bytes.subspan(j, 1), sink2);
      }
    }
    q.OnEnd(sink2);
    Check(sink2.events == sink.events);  // and inspecting or not changes no event
  }
  return 0;
}
