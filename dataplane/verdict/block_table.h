// The block table: what the response side (control's respond module, `vigilctl respond block`)
// asks the dataplane to stop on the wire. An immutable snapshot, built off the workers and
// published whole (the worker integration swaps it as it will swap rule sets: RCU); workers look
// every packet up in it at the cost of a few hash probes and drop what matches.
//
// Entries:
//   kConnection          one connection, both directions: protocol (0: any), client address and
//                        port (0: any), server address and port
//   kQuarantine          every packet to or from the device, except with allow-listed peers
//   kQuarantineOutgoing  packets from the device (and so new connections it opens)
//   kQuarantineIncoming  packets to the device
// Each entry has an id (control's action id) and an expiry in wall-clock time (0: until
// removed); an expired entry no longer matches even before control removes it. Addresses are
// 16 bytes, IPv4 mapped (::ffff:a.b.c.d) as the decoder stores them.
//
// Threads: Build() on any non-worker thread (allocates). Match() and the counters from any
// worker, concurrently: the table never changes after Build() except its per-entry counters
// (relaxed atomics: they are statistics, read by the exporter).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/packet/decoder.h"

namespace vigil::dp {

using Addr16 = std::array<uint8_t, 16>;

enum class BlockKind : uint8_t {
  kConnection,
  kQuarantine,
  kQuarantineOutgoing,
  kQuarantineIncoming
};
const char* BlockKindName(BlockKind k) noexcept;  // "block_connection", "quarantine_device", ...

struct BlockEntry {
  uint64_t id = 0;  // unique in a table, not 0
  BlockKind kind = BlockKind::kConnection;
  Addr16 addr{};             // quarantine: the device; connection: the client
  Addr16 peer{};             // connection: the server
  uint16_t client_port = 0;  // connection: 0 = any
  uint16_t server_port = 0;  // connection
  uint8_t proto = 0;         // connection: IP protocol, 0 = any
  uint64_t expires_ns = 0;   // CLOCK_REALTIME ns; 0 = until removed
};

struct Cidr {
  Addr16 base{};
  uint8_t prefix = 128;  // of the 16-byte form (an IPv4 /24 is 96 + 24)
  bool Contains(const uint8_t* a) const noexcept;
};
// "10.0.0.0/8", "10.0.0.5", "fd00::/8": nullopt-like false with *error.
bool ParseCidr(std::string_view text, Cidr* out, std::string* error);
bool ParseAddr(std::string_view text, Addr16* out);

class BlockTable {
 public:
  // `allow`: peers a quarantined device may still talk to (DNS, DHCP, the management host).
  // `never_block`: addresses no entry may cover (the gateway, the appliance's own management
  // address): an entry that would is refused. Returns nullptr with *error (naming the entry id)
  // for a bad entry: id 0 or repeated, a connection without server port, an excluded address.
  static std::shared_ptr<const BlockTable> Build(std::vector<BlockEntry> entries,
                                                 std::vector<Cidr> allow,
                                                 const std::vector<Cidr>& never_block,
                                                 std::string* error);

  // The entry that blocks a packet from `src`:`sport` to `dst`:`dport` with IP protocol `proto`
  // at wall-clock `now_ns`, or nullptr. Cost: two device probes and up to four connection probes
  // (each a hash and one or two cache lines); nothing when the table is empty.
  const BlockEntry* Match(const uint8_t* src, const uint8_t* dst, uint8_t proto, uint16_t sport,
                          uint16_t dport, uint64_t now_ns) const noexcept;
  // Counts a dropped packet against the entry Match() returned; the first one's wall-clock time
  // `now_ns` is kept (first_drop_ns: the time from a trigger to the block taking effect).
  void CountDrop(const BlockEntry* e, uint64_t now_ns) const noexcept;
  void CountReset(const BlockEntry* e) const noexcept;  // an RST pair sent for it
  uint64_t drops(size_t index) const noexcept;
  uint64_t resets(size_t index) const noexcept;
  uint64_t first_drop_ns(size_t index) const noexcept;  // 0: nothing dropped yet

  // Before publication only (main thread): entries with the same id as one of `old` start from
  // its counters, so a re-push of the same action keeps its drops, resets and first-drop time.
  void InheritCounters(const BlockTable& old) const;

  std::span<const BlockEntry> entries() const noexcept { return entries_; }
  bool empty() const noexcept { return entries_.empty(); }

 private:
  BlockTable() = default;
  struct Slot {
    uint64_t hash = 0;  // 0: free
    int32_t entry = -1;
  };
  static void Insert(std::vector<Slot>* t, uint64_t hash, int32_t entry);
  bool Allowed(const uint8_t* peer) const noexcept;

  std::vector<BlockEntry> entries_;
  std::vector<Slot> devices_;      // open addressing, power of two
  std::vector<Slot> connections_;  // one slot per entry, keyed client -> server
  std::vector<Cidr> allow_;
  std::unique_ptr<std::atomic<uint64_t>[]> drops_, resets_, first_drop_;
};

// A TCP RST for the connection of `frame` (decoded into `m`, a TCP packet), written into `out`:
// toward the receiver of `frame` (as if the sender reset it), or toward its sender (as if the
// receiver did). Ethernet and VLAN tags are kept (MACs swapped toward the sender), IPv4/IPv6
// header rebuilt without options, checksums computed. `frame` is a packet the dataplane drops, so
// the sequence number is exactly the one the target expects next (RFC 5961 accepts an RST only
// there; anything else in the window draws a challenge ACK): the packet's ack toward the sender,
// the packet's own seq toward the receiver (which never gets the packet).
// Returns the frame length, or 0 when `frame` is not TCP or `out` is too small (kRstMaxBytes).
inline constexpr size_t kRstMaxBytes = 14 + 4 * kMaxVlans + 40 + 20;
size_t BuildTcpRst(std::span<const uint8_t> frame, const PacketMeta& m, bool toward_sender,
                   std::span<uint8_t> out) noexcept;

// An ICMP destination unreachable, port unreachable (ICMPv4 type 3 code 3, ICMPv6 type 1 code 4)
// toward the sender of `frame` (decoded into `m`, a UDP packet), as its destination would answer
// a closed port: Ethernet and VLAN tags kept with the MACs swapped, a new IP header from the
// packet's destination to its source, and as payload the packet's IP header and the first 8
// bytes after it (RFC 792; RFC 4443 allows more, 8 is what every stack reads). Checksums
// computed. Returns the frame length, or 0 when `frame` is not a decodable UDP packet or `out`
// is too small (kIcmpUnreachableMaxBytes).
inline constexpr size_t kIcmpUnreachableMaxBytes = 14 + 4 * kMaxVlans + 40 + 8 + 60 + 8;
size_t BuildIcmpUnreachable(std::span<const uint8_t> frame, const PacketMeta& m,
                            std::span<uint8_t> out) noexcept;

}  // namespace vigil::dp
