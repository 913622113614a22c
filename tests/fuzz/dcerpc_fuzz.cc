// libFuzzer target for the connection-oriented DCE-RPC layer and the `dcerpc` parser: any byte
// stream, cut into pieces in both directions with gaps, must parse without a memory error, and
// every event must be balanced JSON. The same pieces also go through a bare DcerpcConnection
// whose calls are written in the smb.dcerpc shape and checked for bounds.
//
// Input layout: a sequence of records. A record's first byte says the direction (bit 0), whether
// it is a gap (bits 1-3 == 7) and the piece length (next byte + 1). The piece is the following
// bytes; what is left when a record does not fit is fed as one last piece.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/dcerpc.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

using vigil::proto::DcerpcCall;
using vigil::proto::DcerpcConnection;
using vigil::proto::Direction;

class CheckingObserver final : public vigil::proto::DcerpcObserver {
 public:
  explicit CheckingObserver(const DcerpcConnection& conn) : conn_(conn) {}
  void OnCall(const DcerpcCall& c) noexcept override {
    Check(c.num_interfaces <= vigil::proto::kDcerpcMaxInterfaces);
    Check(c.num_endpoints <= vigil::proto::kDcerpcMaxEndpoints);
    char buf[2048];  // small on purpose: truncation must keep the JSON balanced
    vigil::proto::JsonWriter w(buf, sizeof buf);
    w.ObjectBegin("dcerpc");
    conn_.WriteCallJson(c, w);
    w.ObjectEnd();
    Check(w.depth() == 0);
    vigil::proto::TextBuilder t;
    conn_.AppendCallMessage(c, t);
    if (const auto* iface = conn_.InterfaceFor(c.context_id))
      Check(iface->context_id == c.context_id);
    ++calls;
  }
  void OnAnomaly(Direction, const char* event) noexcept override { Check(event != nullptr); }
  size_t calls = 0;

 private:
  const DcerpcConnection& conn_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::proto::testing::CollectSink sink;
  sink.inspect = true;  // the signature engine's buffers are assembled too
  vigil::proto::DcerpcParser parser;
  DcerpcConnection conn;
  CheckingObserver obs(conn);

  // The whole input as the first bytes of a flow: probing must not read past it.
  (void)vigil::proto::DcerpcProbe(std::span<const uint8_t>(data, size));

  size_t i = 0;
  while (i < size) {
    const uint8_t ctl = data[i++];
    const Direction dir = (ctl & 1) ? Direction::kToClient : Direction::kToServer;
    size_t len = i < size ? static_cast<size_t>(data[i++]) + 1 : 0;
    if (((ctl >> 1) & 7) == 7) {
      parser.OnGap(dir, static_cast<uint32_t>(len * ((ctl >> 4) + 1)), sink);
      conn.Gap(dir, static_cast<uint32_t>(len * ((ctl >> 4) + 1)), obs);
      continue;
    }
    if (len > size - i) len = size - i;
    const std::span<const uint8_t> piece(data + i, len);
    i += len;
    parser.OnData(dir, piece, sink);
    conn.Feed(dir, piece, obs);
  }
  parser.OnEnd(sink);
  conn.Flush(obs);
  Check(!sink.unbalanced);
  Check(parser.learned_endpoints().size() <= vigil::proto::kDcerpcMaxEndpoints);
  return 0;
}
