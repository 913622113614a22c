// The signature engine: a loaded rule set (rules/lang) compiled into Hyperscan databases of every
// rule's fast pattern: for pkt_data one per header group (rules that can apply to a packet of one
// transport or application protocol, direction, side of $HOME_NET and port), for each app-layer
// buffer one. An inspection scans the packet's groups and the buffers it is given, and each rule
// whose fast pattern was seen (or that has none) is verified against all its other conditions:
// header (protocol, addresses, ports, direction), flow, dsize, flowbits, every content and pcre
// with its modifiers, then thresholds; `pass` rules first. See docs/rules.md ("Matching").
// Across TCP segments: given the bytes of the same direction that precede a packet's payload in
// the stream (Buffers::SetStreamPrefix), a seam database finds the pkt_data fast patterns that
// straddle the segment boundary, and those rules are verified over prefix + payload.
//
// Threads: Detector is immutable once built and may be shared by every worker (an RCU snapshot
// in the dataplane); Build() runs on a loading thread (it allocates and may take seconds for large
// sets). Each worker owns one Scratch (NewScratch() at start-up); Inspect() with it never blocks
// and never allocates. FlowBits live in the caller's per-flow state.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rules/lang/rule.h"

namespace vigil::rules {

inline constexpr size_t kBufferCount = static_cast<size_t>(Buffer::kTlsCerts) + 1;
// The most stream bytes before a payload an inspection takes (Buffers::SetStreamPrefix).
inline constexpr size_t kMaxStreamPrefix = 64;
static_assert(kBufferCount <= 64, "Buffers keeps a 64-bit presence mask");

// A DCE/RPC request as dcerpc.iface / dcerpc.opnum see it: the interface its context was bound
// to (when the bind was seen) and its operation number.
struct DcerpcInfo {
  bool has_iface = false;
  std::array<uint8_t, 16> uuid{};  // the GUID's wire layout (first three fields little-endian)
  uint16_t version = 0;            // the interface's major version
  uint16_t opnum = 0;
};

// A Kerberos message as krb5.ticket_encryption, krb5_msg_type and krb5_err_code see it. A message
// gives it with its kKrb5Sname buffer (every AS/TGS request and reply and KRB-ERROR names its
// server), which rules with these keywords need.
struct Krb5Info {
  uint8_t msg_type = 0;       // 10 AS-REQ, 11 AS-REP, 12 TGS-REQ, 13 TGS-REP, 30 KRB-ERROR
  int32_t ticket_etype = -1;  // the ticket's enc-part etype (a REP), -1 when absent
  int32_t error_code = -1;    // KRB-ERROR, -1 when absent
};

// The bytes one inspection sees, per buffer. A buffer that is not set is absent: a rule that
// needs it does not match. The spans must stay valid during Inspect(). A DCE/RPC request also
// gives kDcerpcStubData (possibly empty) and its DcerpcInfo.
class Buffers {
 public:
  void Set(Buffer b, std::span<const uint8_t> data) noexcept {
    spans_[static_cast<size_t>(b)] = data;
    present_ |= uint64_t{1} << static_cast<size_t>(b);
  }
  void Clear() noexcept {
    present_ = 0;
    dcerpc_ = nullptr;
    krb5_ = nullptr;
    prefix_ = {};
    multi_count_ = 0;
    context_ = 0;
  }
  // A multi-buffer: `items` are the instances (each verified on its own: a rule matches when one
  // instance holds all its conditions on that buffer), `whole` covers them all (it is what the
  // fast-pattern database scans). At most kMaxMultiBuffers per inspection; more are ignored.
  static constexpr size_t kMaxMultiBuffers = 4;
  void SetItems(Buffer b, std::span<const std::span<const uint8_t>> items,
                std::span<const uint8_t> whole) noexcept {
    if (multi_count_ == kMaxMultiBuffers) return;
    multi_[multi_count_++] = {b, items};
    Set(b, whole);
  }
  // The instances of multi-buffer `b` (empty: `b` is a single buffer, or absent).
  std::span<const std::span<const uint8_t>> Items(Buffer b) const noexcept {
    for (size_t i = 0; i < multi_count_; ++i) {
      if (multi_[i].first == b) return multi_[i].second;
    }
    return {};
  }
  // A buffer of the message's context rather than of the message itself (an HTTP response gives
  // its request's URI and host this way): rules may look at it, but a rule that needs only context
  // buffers is not consulted (it was on the message the context comes from).
  void SetContext(Buffer b, std::span<const uint8_t> data) noexcept {
    Set(b, data);
    context_ |= uint64_t{1} << static_cast<size_t>(b);
  }
  uint64_t context_mask() const noexcept { return context_; }
  void SetKrb5(const Krb5Info* k) noexcept { krb5_ = k; }
  const Krb5Info* krb5() const noexcept { return krb5_; }
  // TCP: the last bytes (at most kMaxStreamPrefix; more are ignored) the same direction of the
  // flow carried just before the kPacket payload, in stream order. Empty: none known (the first
  // data, or the payload does not continue the stream in order).
  void SetStreamPrefix(std::span<const uint8_t> prefix) noexcept { prefix_ = prefix; }
  std::span<const uint8_t> stream_prefix() const noexcept { return prefix_; }
  void SetDcerpc(const DcerpcInfo* d) noexcept { dcerpc_ = d; }
  const DcerpcInfo* dcerpc() const noexcept { return dcerpc_; }
  bool Has(Buffer b) const noexcept { return (present_ >> static_cast<size_t>(b)) & 1; }
  std::span<const uint8_t> Get(Buffer b) const noexcept { return spans_[static_cast<size_t>(b)]; }
  uint64_t mask() const noexcept { return present_; }

 private:
  std::array<std::span<const uint8_t>, kBufferCount> spans_{};
  uint64_t present_ = 0;
  uint64_t context_ = 0;  // of present_: context buffers (SetContext)
  const DcerpcInfo* dcerpc_ = nullptr;
  const Krb5Info* krb5_ = nullptr;
  std::span<const uint8_t> prefix_;
  std::array<std::pair<Buffer, std::span<const std::span<const uint8_t>>>, kMaxMultiBuffers>
      multi_{};
  size_t multi_count_ = 0;
};

// The packet or transaction being inspected, oriented as it travels (src is the sender).
struct PacketMeta {
  Protocol transport = Protocol::kTcp;  // kTcp, kUdp, kIcmp; kIp for any other
  Protocol app = Protocol::kIp;         // the flow's application protocol; kIp: not identified
  bool ipv6 = false;
  std::array<uint8_t, 16> src{}, dst{};  // IPv4 in the first 4 bytes, network order
  uint16_t src_port = 0, dst_port = 0;
  bool to_server = true;      // the sender is the flow's client
  bool established = false;   // TCP: after the handshake; UDP: once both sides spoke
  uint32_t payload_size = 0;  // dsize
  int64_t ts_ns = 0;          // packet time, for thresholds
};

inline constexpr size_t kMaxFlowbits = 256;
struct FlowBits {
  std::bitset<kMaxFlowbits> bits;
};

struct DetectorStats {
  size_t rules = 0;
  size_t prefiltered = 0;     // rules with a fast pattern (checked only when it is seen)
  size_t always = 0;          // rules without one (every inspection of their header group)
  size_t patterns = 0;        // distinct fast patterns over all buffers
  size_t databases = 0;       // fast-pattern databases (app-layer buffers and header groups)
  size_t header_groups = 0;   // distinct rule groups by transport, direction and port
  size_t stream_rules = 0;    // rules also matched across TCP segments (in the seam database)
  size_t pcres = 0;           // pcre databases (one per pcre, for verification)
  size_t flowbits = 0;        // distinct flowbit names
  size_t database_bytes = 0;  // Hyperscan database sizes
  double build_ms = 0;
  bool from_cache = false;  // the databases came from the cache
  // Rules that can never alert, with the reason: left out ("flowbits: more than 256 names") or
  // kept with a pcre Hyperscan refused at compile time ("pcre: ...").
  std::vector<std::pair<uint32_t, std::string>> dropped;
};

// One worker's Hyperscan scratch, candidate marks and threshold state (Detector::NewScratch).
class Scratch {
 public:
  Scratch();
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Detector {
 public:
  // Compiles the rules (taken over). nullptr with *error when a database cannot be built; rules
  // the engine cannot take are dropped and listed in stats->dropped, not an error.
  // `cache_dir` (optional): compiled databases are kept there in one file per set of database
  // inputs (Hyperscan version, fast patterns, pcres), so that a restart with the same rules
  // loads them instead of compiling; a missing, stale or corrupt file is rebuilt.
  static std::shared_ptr<const Detector> Build(std::vector<Rule> rules, std::string* error,
                                               DetectorStats* stats = nullptr,
                                               const std::string& cache_dir = "");
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Per-thread scratch for this detector (and any detector built later with no more databases:
  // call again after a reload). nullptr with *error when Hyperscan cannot allocate it.
  std::unique_ptr<Scratch> NewScratch(std::string* error) const;

  // Inspects one packet or transaction: a packet when `b` has the kPacket buffer (the rules that
  // need no app-layer buffer are consulted), else one application-layer message (only the rules
  // that need at least one of its buffers: a rule with no content condition is a packet rule,
  // and one that mixes pkt_data with app-layer buffers matches neither). Writes the indexes of the
  // rules that alert (at most alerts.size(), in rule order; rules with `noalert` never appear) and
  // returns how many. Matching rules also update `bits` (may be null: flowbit conditions then fail
  // and actions are skipped) and the scratch's threshold state. With a stream prefix on a TCP
  // packet, a stream rule (one with a pkt_data fast pattern and no condition tied to the packet:
  // no dsize, offset, depth or other absolute position, not tcp-pkt or no_stream) whose fast
  // pattern straddles the prefix's end is also verified over prefix + payload as one buffer.
  size_t Inspect(const PacketMeta& p, const Buffers& b, FlowBits* bits, Scratch& scratch,
                 std::span<uint32_t> alerts) const noexcept;

  // Whether rule `rule` matches, checked on its own without the prefilter: every condition
  // Inspect verifies (header, flow, dsize, flowbit tests, contents and pcres), but no threshold
  // and no flowbit action. For tests and for explaining a rule's verdict. Never allocates.
  bool Matches(uint32_t rule, const PacketMeta& p, const Buffers& b, const FlowBits* bits,
               Scratch& scratch) const noexcept;

  const Rule& rule(uint32_t index) const { return rules_[index]; }
  size_t size() const { return rules_.size(); }
  const DetectorStats& stats() const { return stats_; }

  struct Impl;

 private:
  Detector();
  bool Verify(uint32_t rule, const PacketMeta& p, const Buffers& b, const FlowBits* bits,
              Scratch::Impl& scratch) const noexcept;
  std::vector<Rule> rules_;
  DetectorStats stats_;
  std::unique_ptr<Impl> impl_;
};

// Verification of one buffer's contents and pcres, exposed for tests: `matches` are the rule's
// matches in that buffer in rule order. Suricata's semantics: offset/depth from the buffer start
// (depth counted from offset), distance/within from the end of the previous match in the buffer
// (within counted from there plus distance), a relative match with no previous one is relative to
// the buffer start, negated contents must not occur in their window and do not move the anchor,
// and a later relative match that fails makes the earlier ones try their next occurrence.
// `pcre_db` gives the compiled pcre of a Pcre match (nullptr: that pcre fails).
struct PcreRunner {
  virtual ~PcreRunner() = default;
  // Every end offset (relative to `data`) of a match of pcre `p` in `data`, ascending, at most
  // ends.size(); returns how many (0: no match), or SIZE_MAX when `p` cannot be run (the match
  // then fails, negated or not).
  virtual size_t Ends(const Pcre& p, std::span<const uint8_t> data,
                      std::span<uint32_t> ends) noexcept = 0;
};
bool VerifyBuffer(std::span<const Match* const> matches, std::span<const uint8_t> buffer,
                  PcreRunner* pcre, int* budget) noexcept;

}  // namespace vigil::rules
