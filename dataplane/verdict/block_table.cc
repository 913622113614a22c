#include "dataplane/verdict/block_table.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace vigil::dp {
namespace {

constexpr size_t kProbeLimit = 64;  // a probe sequence longer than this ends the lookup

uint64_t Fold(uint64_t h, uint64_t v) noexcept {
  h ^= v;
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

uint64_t HashAddr(uint64_t h, const uint8_t* a) noexcept {
  uint64_t x, y;
  std::memcpy(&x, a, 8);
  std::memcpy(&y, a + 8, 8);
  return Fold(Fold(h, x), y);
}

uint64_t DeviceHash(const uint8_t* a) noexcept { return HashAddr(0x6a09e667f3bcc908ull, a) | 1; }

uint64_t ConnectionHash(const uint8_t* client, const uint8_t* server, uint16_t port) noexcept {
  return Fold(HashAddr(HashAddr(0xbb67ae8584caa73bull, client), server), port) | 1;
}

bool Expired(const BlockEntry& e, uint64_t now_ns) noexcept {
  return e.expires_ns != 0 && now_ns >= e.expires_ns;
}

size_t TableSize(size_t n) {
  size_t s = 16;
  while (s < n * 2) s <<= 1;
  return s;
}

void Sum16(const uint8_t* p, size_t n, uint32_t* acc) noexcept {
  for (size_t i = 0; i + 1 < n; i += 2) *acc += (uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) *acc += uint32_t{p[n - 1]} << 8;
}

uint16_t Finish(uint32_t acc) noexcept {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

void Put16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void Put32(uint8_t* p, uint32_t v) noexcept {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

bool IsV4Mapped(const uint8_t* a) noexcept {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, 12) == 0;
}

}  // namespace

void BlockTable::Insert(std::vector<Slot>* t, uint64_t hash, int32_t entry) {
  const size_t mask = t->size() - 1;  // at least twice the entries: a free slot exists
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if ((*t)[i].hash == 0) {
      (*t)[i] = {hash, entry};
      return;
    }
  }
}

const char* BlockKindName(BlockKind k) noexcept {
  switch (k) {
    case BlockKind::kConnection:
      return "block_connection";
    case BlockKind::kQuarantine:
      return "quarantine_device";
    case BlockKind::kQuarantineOutgoing:
      return "quarantine_outgoing";
    case BlockKind::kQuarantineIncoming:
      return "quarantine_incoming";
  }
  return "unknown";
}

bool Cidr::Contains(const uint8_t* a) const noexcept {
  const uint8_t full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a, base.data(), full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (base[full] & mask);
}

bool ParseAddr(std::string_view text, Addr16* out) {
  const std::string s(text);
  uint8_t v4[4];
  if (inet_pton(AF_INET, s.c_str(), v4) == 1) {
    *out = {};
    (*out)[10] = (*out)[11] = 0xff;
    std::memcpy(out->data() + 12, v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s.c_str(), out->data()) == 1;
}

bool ParseCidr(std::string_view text, Cidr* out, std::string* error) {
  const size_t slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  if (!ParseAddr(addr, &out->base)) {
    *error = "not an IPv4 or IPv6 address: " + std::string(text);
    return false;
  }
  const bool v4 = addr.find(':') == std::string_view::npos;
  const int max = v4 ? 32 : 128;
  int len = max;
  if (slash != std::string_view::npos) {
    const std::string p(text.substr(slash + 1));
    char* end = nullptr;
    const long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v < 0 || v > max) {
      *error = "bad prefix length in " + std::string(text);
      return false;
    }
    len = static_cast<int>(v);
  }
  out->prefix = static_cast<uint8_t>(v4 ? 96 + len : len);
  // Clear host bits so that equal networks compare equal.
  for (int bit = out->prefix; bit < 128; ++bit) {
    out->base[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return true;
}

std::shared_ptr<const BlockTable> BlockTable::Build(std::vector<BlockEntry> entries,
                                                    std::vector<Cidr> allow,
                                                    const std::vector<Cidr>& never_block,
                                                    std::string* error) {
  std::shared_ptr<BlockTable> t(new BlockTable());
  std::unordered_set<uint64_t> ids;
  size_t devices = 0, connections = 0;
  for (const BlockEntry& e : entries) {
    const std::string who = "block entry " + std::to_string(e.id);
    if (e.id == 0 || !ids.insert(e.id).second) {
      *error = who + ": the id must be unique and not 0";
      return nullptr;
    }
    if (e.kind == BlockKind::kConnection && e.server_port == 0 && e.proto != 1 && e.proto != 58) {
      *error = who + ": a connection needs its server port";
      return nullptr;
    }
    for (const Cidr& c : never_block) {
      if (c.Contains(e.addr.data()) ||
          (e.kind == BlockKind::kConnection && c.Contains(e.peer.data()))) {
        *error = who + ": covers an address that is never blocked";
        return nullptr;
      }
    }
    (e.kind == BlockKind::kConnection ? connections : devices)++;
  }
  t->entries_ = std::move(entries);
  t->allow_ = std::move(allow);
  t->devices_.assign(TableSize(devices), Slot{});
  t->connections_.assign(TableSize(connections), Slot{});
  for (size_t i = 0; i < t->entries_.size(); ++i) {
    const BlockEntry& e = t->entries_[i];
    if (e.kind == BlockKind::kConnection) {
      Insert(&t->connections_, ConnectionHash(e.addr.data(), e.peer.data(), e.server_port),
             static_cast<int32_t>(i));
    } else {
      Insert(&t->devices_, DeviceHash(e.addr.data()), static_cast<int32_t>(i));
    }
  }
  t->drops_ = std::make_unique<std::atomic<uint64_t>[]>(t->entries_.size());
  t->resets_ = std::make_unique<std::atomic<uint64_t>[]>(t->entries_.size());
  t->first_drop_ = std::make_unique<std::atomic<uint64_t>[]>(t->entries_.size());
  return t;
}

bool BlockTable::Allowed(const uint8_t* peer) const noexcept {
  for (const Cidr& c : allow_) {
    if (c.Contains(peer)) return true;
  }
  return false;
}

const BlockEntry* BlockTable::Match(const uint8_t* src, const uint8_t* dst, uint8_t proto,
                                    uint16_t sport, uint16_t dport,
                                    uint64_t now_ns) const noexcept {
  if (entries_.empty()) return nullptr;
  // Walks the probe sequence of `hash`, returning the first live entry `fits` accepts.
  auto walk = [&](const std::vector<Slot>& table, uint64_t hash, auto&& fits) -> const BlockEntry* {
    const size_t mask = table.size() - 1;
    size_t i = hash & mask;
    for (size_t n = 0; n < kProbeLimit && table[i].hash != 0; ++n, i = (i + 1) & mask) {
      if (table[i].hash != hash) continue;
      const BlockEntry& e = entries_[static_cast<size_t>(table[i].entry)];
      if (!Expired(e, now_ns) && fits(e)) return &e;
    }
    return nullptr;
  };
  if (!devices_.empty()) {
    const BlockEntry* e = walk(devices_, DeviceHash(src), [&](const BlockEntry& x) {
      return std::memcmp(x.addr.data(), src, 16) == 0 &&
             (x.kind == BlockKind::kQuarantine || x.kind == BlockKind::kQuarantineOutgoing) &&
             !Allowed(dst);
    });
    if (e == nullptr) {
      e = walk(devices_, DeviceHash(dst), [&](const BlockEntry& x) {
        return std::memcmp(x.addr.data(), dst, 16) == 0 &&
               (x.kind == BlockKind::kQuarantine || x.kind == BlockKind::kQuarantineIncoming) &&
               !Allowed(src);
      });
    }
    if (e != nullptr) return e;
  }
  // The connection, client -> server (this packet from the client) or server -> client.
  auto conn = [&](const uint8_t* client, const uint8_t* server, uint16_t cport, uint16_t sp) {
    return walk(connections_, ConnectionHash(client, server, sp), [&](const BlockEntry& x) {
      return x.server_port == sp && (x.proto == 0 || x.proto == proto) &&
             (x.client_port == 0 || x.client_port == cport) &&
             std::memcmp(x.addr.data(), client, 16) == 0 &&
             std::memcmp(x.peer.data(), server, 16) == 0;
    });
  };
  const BlockEntry* e = conn(src, dst, sport, dport);
  return e != nullptr ? e : conn(dst, src, dport, sport);
}

void BlockTable::CountDrop(const BlockEntry* e, uint64_t now_ns) const noexcept {
  // Relaxed: statistics, no ordering with anything else.
  const auto i = static_cast<size_t>(e - entries_.data());
  if (drops_[i].fetch_add(1, std::memory_order_relaxed) == 0) {
    first_drop_[i].store(now_ns, std::memory_order_relaxed);  // only the first drop gets here
  }
}

void BlockTable::CountReset(const BlockEntry* e) const noexcept {
  resets_[static_cast<size_t>(e - entries_.data())].fetch_add(1, std::memory_order_relaxed);
}

uint64_t BlockTable::drops(size_t index) const noexcept {
  return drops_[index].load(std::memory_order_relaxed);
}

uint64_t BlockTable::resets(size_t index) const noexcept {
  return resets_[index].load(std::memory_order_relaxed);
}

void BlockTable::InheritCounters(const BlockTable& old) const {
  std::unordered_map<uint64_t, size_t> index;
  for (size_t j = 0; j < old.entries_.size(); ++j) index.emplace(old.entries_[j].id, j);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const auto it = index.find(entries_[i].id);
    if (it == index.end()) continue;
    drops_[i].store(old.drops(it->second), std::memory_order_relaxed);
    resets_[i].store(old.resets(it->second), std::memory_order_relaxed);
    first_drop_[i].store(old.first_drop_ns(it->second), std::memory_order_relaxed);
  }
}

uint64_t BlockTable::first_drop_ns(size_t index) const noexcept {
  return first_drop_[index].load(std::memory_order_relaxed);
}

size_t BuildTcpRst(std::span<const uint8_t> frame, const PacketMeta& m, bool toward_sender,
                   std::span<uint8_t> out) noexcept {
  if (m.ip_proto != 6 || m.l4_offset == 0 || m.l3_offset < 14 || out.size() < kRstMaxBytes ||
      frame.size() < static_cast<size_t>(m.l4_offset) + 20 || m.l3_offset > 14 + 4 * kMaxVlans ||
      (m.ip_version != 4 && m.ip_version != 6)) {
    return 0;
  }
  uint8_t* o = out.data();
  std::memcpy(o, frame.data(), m.l3_offset);  // Ethernet and VLAN tags
  if (toward_sender) {
    std::memcpy(o, frame.data() + 6, 6);
    std::memcpy(o + 6, frame.data(), 6);
  }
  const uint8_t* src = toward_sender ? m.dst_addr : m.src_addr;
  const uint8_t* dst = toward_sender ? m.src_addr : m.dst_addr;
  uint8_t* ip = o + m.l3_offset;
  size_t ip_len;
  uint32_t pseudo = 0;
  if (m.ip_version == 4) {
    if (!IsV4Mapped(src) || !IsV4Mapped(dst)) return 0;
    ip_len = 20;
    std::memset(ip, 0, 20);
    ip[0] = 0x45;
    Put16(ip + 2, 40);
    Put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = 6;
    std::memcpy(ip + 12, src + 12, 4);
    std::memcpy(ip + 16, dst + 12, 4);
    uint32_t acc = 0;
    Sum16(ip, 20, &acc);
    Put16(ip + 10, Finish(acc));
    Sum16(ip + 12, 8, &pseudo);
  } else {
    ip_len = 40;
    std::memset(ip, 0, 40);
    ip[0] = 0x60;
    Put16(ip + 4, 20);
    ip[6] = 6;
    ip[7] = 64;
    std::memcpy(ip + 8, src, 16);
    std::memcpy(ip + 24, dst, 16);
    Sum16(ip + 8, 32, &pseudo);
  }
  pseudo += 6 + 20;  // protocol and TCP length
  uint8_t* tcp = ip + ip_len;
  std::memset(tcp, 0, 20);
  const uint32_t len =
      m.payload_len + ((m.tcp_flags & kTcpSyn) ? 1 : 0) + ((m.tcp_flags & kTcpFin) ? 1 : 0);
  const bool has_ack = (m.tcp_flags & kTcpAck) != 0;
  uint32_t seq, ack;
  uint8_t flags;
  if (toward_sender) {  // RFC 9293 3.10.7.1: SEQ = SEG.ACK if ACK, else 0 with ACK = SEG.SEQ+LEN
    Put16(tcp, m.dst_port);
    Put16(tcp + 2, m.src_port);
    seq = has_ack ? m.tcp_ack : 0;
    ack = m.tcp_seq + len;
    flags = kTcpRst | kTcpAck;
  } else {  // in place of the dropped segment, which the receiver expects next
    Put16(tcp, m.src_port);
    Put16(tcp + 2, m.dst_port);
    seq = m.tcp_seq;
    ack = has_ack ? m.tcp_ack : 0;
    flags = has_ack ? (kTcpRst | kTcpAck) : kTcpRst;
  }
  Put32(tcp + 4, seq);
  Put32(tcp + 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  Sum16(tcp, 20, &pseudo);
  Put16(tcp + 16, Finish(pseudo));
  size_t n = m.l3_offset + ip_len + 20;
  if (n < 60) {  // Ethernet minimum (without FCS)
    std::memset(o + n, 0, 60 - n);
    n = 60;
  }
  return n;
}

size_t BuildIcmpUnreachable(std::span<const uint8_t> frame, const PacketMeta& m,
                            std::span<uint8_t> out) noexcept {
  if (m.ip_proto != 17 || m.l4_offset == 0 || m.l3_offset < 14 ||
      out.size() < kIcmpUnreachableMaxBytes || m.l3_offset > 14 + 4 * kMaxVlans ||
      (m.ip_version != 4 && m.ip_version != 6)) {
    return 0;
  }
  // The quoted part: the packet's IP header (with options, for IPv4) and 8 bytes after it.
  const size_t quoted = static_cast<size_t>(m.l4_offset - m.l3_offset) + 8;
  if (frame.size() < static_cast<size_t>(m.l4_offset) + 8 || quoted > 60 + 8) return 0;
  uint8_t* o = out.data();
  std::memcpy(o, frame.data(), m.l3_offset);  // Ethernet and VLAN tags, MACs swapped
  std::memcpy(o, frame.data() + 6, 6);
  std::memcpy(o + 6, frame.data(), 6);
  uint8_t* ip = o + m.l3_offset;
  size_t ip_len;
  uint32_t sum = 0;
  if (m.ip_version == 4) {
    if (!IsV4Mapped(m.src_addr) || !IsV4Mapped(m.dst_addr)) return 0;
    ip_len = 20;
    std::memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[1] = 0xc0;  // precedence "internetwork control", as stacks send ICMP errors
    Put16(ip + 2, static_cast<uint16_t>(20 + 8 + quoted));
    ip[8] = 64;
    ip[9] = 1;
    std::memcpy(ip + 12, m.dst_addr + 12, 4);
    std::memcpy(ip + 16, m.src_addr + 12, 4);
    uint32_t acc = 0;
    Sum16(ip, 20, &acc);
    Put16(ip + 10, Finish(acc));
  } else {
    ip_len = 40;
    std::memset(ip, 0, 40);
    ip[0] = 0x60;
    Put16(ip + 4, static_cast<uint16_t>(8 + quoted));
    ip[6] = 58;
    ip[7] = 64;
    std::memcpy(ip + 8, m.dst_addr, 16);
    std::memcpy(ip + 24, m.src_addr, 16);
    Sum16(ip + 8, 32, &sum);  // pseudo-header: addresses, length, next header
    sum += static_cast<uint32_t>(8 + quoted) + 58;
  }
  uint8_t* icmp = ip + ip_len;
  std::memset(icmp, 0, 8);
  icmp[0] = m.ip_version == 4 ? 3 : 1;  // destination unreachable
  icmp[1] = m.ip_version == 4 ? 3 : 4;  // port unreachable
  std::memcpy(icmp + 8, frame.data() + m.l3_offset, quoted);
  Sum16(icmp, 8 + quoted, &sum);
  Put16(icmp + 2, Finish(sum));
  size_t n = m.l3_offset + ip_len + 8 + quoted;
  if (n < 60) {  // Ethernet minimum (without FCS)
    std::memset(o + n, 0, 60 - n);
    n = 60;
  }
  return n;
}

}  // namespace vigil::dp
