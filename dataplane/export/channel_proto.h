// The event channel's wire format, shared by the dataplane's ChannelClient and control's
// ChannelServer (header-only, no DPDK, no allocation). The same EVENT frames are the client's
// on-disk journal records, so the journal is sent to the socket byte for byte.
//
// Every frame: a 16-byte header, then `length` body bytes; all integers little-endian.
//   0  u32 magic   kFrameMagic ("VIGC")
//   4  u8  type    FrameType
//   5  u8  flags   0
//   6  u16 reserved 0
//   8  u32 length  body bytes, at most the receiver's limit (kMaxFrameBody by default)
//  12  u32 crc     CRC-32C over header bytes 4..11 and the body (catches torn journal tails
//                  after a host crash and garbage on the socket)
// Bodies:
//   HELLO   u16 version, u16 name_len, u32 0, u64 client's next seq, name (1..kMaxSensorName)
//   WELCOME u16 version, u16 0, u32 0, u64 last seq committed for the sensor (0: none)
//   EVENT   u64 seq (1, 2, ... per sensor), payload (one EVE JSON object, no newline)
//   ACK     u64 seq: every EVENT of this sensor up to seq is committed
//   ERROR   u32 code, text: why the server is closing the connection
//
// Thread rules: plain functions on caller-owned buffers; safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace vigil::channel {

inline constexpr uint32_t kFrameMagic = 0x43474956;  // bytes "VIGC"
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kHeaderBytes = 16;
// Largest body either side accepts by default (an EVE line is a few KiB at most; the writer's
// JsonWriter is bounded far below this).
inline constexpr uint32_t kMaxFrameBody = 1u << 20;
inline constexpr size_t kMaxSensorName = 255;
inline constexpr size_t kHelloFixed = 16;
inline constexpr size_t kEventFixed = 8;

enum class FrameType : uint8_t { kHello = 1, kWelcome = 2, kEvent = 3, kAck = 4, kError = 5 };

enum class ErrorCode : uint32_t { kProtocol = 1, kVersion = 2, kCommitFailed = 3, kReplaced = 4 };

// ---- little-endian helpers (the build targets are little-endian, but say so explicitly) ----

inline void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---- CRC-32C (Castagnoli), slicing-by-8: ~1 byte per cycle, so a 300-byte event costs ~0.1 µs
// ----

namespace internal {
struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Crc32cTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};
inline constexpr Crc32cTables kCrc32c{};
}  // namespace internal

// Continues a CRC-32C: pass the previous return value as `crc` (0 to start).
inline uint32_t Crc32c(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = internal::kCrc32c.t;
  crc = ~crc;
  while (n >= 8) {
    const uint32_t lo = crc ^ GetU32(p);
    const uint32_t hi = GetU32(p + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

// ---- encoding ----

// Writes a header for a body already at out[kHeaderBytes .. kHeaderBytes + length).
inline void SealFrame(uint8_t* out, FrameType type, uint32_t length) {
  PutU32(out, kFrameMagic);
  out[4] = static_cast<uint8_t>(type);
  out[5] = 0;
  PutU16(out + 6, 0);
  PutU32(out + 8, length);
  uint32_t crc = Crc32c(0, out + 4, 8);
  crc = Crc32c(crc, out + kHeaderBytes, length);
  PutU32(out + 12, crc);
}

// Appends a whole frame with `body_prefix` then `body_rest` as its body.
inline void AppendFrame(std::string* out, FrameType type, std::span<const uint8_t> body_prefix,
                        std::string_view body_rest = {}) {
  const size_t at = out->size();
  const size_t len = body_prefix.size() + body_rest.size();
  out->resize(at + kHeaderBytes + len);
  auto* p = reinterpret_cast<uint8_t*>(out->data()) + at;
  if (!body_prefix.empty()) std::memcpy(p + kHeaderBytes, body_prefix.data(), body_prefix.size());
  if (!body_rest.empty()) {
    std::memcpy(p + kHeaderBytes + body_prefix.size(), body_rest.data(), body_rest.size());
  }
  SealFrame(p, type, static_cast<uint32_t>(len));
}

inline void AppendEvent(std::string* out, uint64_t seq, std::string_view payload) {
  uint8_t b[kEventFixed];
  PutU64(b, seq);
  AppendFrame(out, FrameType::kEvent, b, payload);
}
inline void AppendHello(std::string* out, std::string_view sensor, uint64_t next_seq) {
  uint8_t b[kHelloFixed] = {};
  PutU16(b, kProtocolVersion);
  PutU16(b + 2, static_cast<uint16_t>(sensor.size()));
  PutU64(b + 8, next_seq);
  AppendFrame(out, FrameType::kHello, b, sensor);
}
inline void AppendWelcome(std::string* out, uint64_t last_committed) {
  uint8_t b[16] = {};
  PutU16(b, kProtocolVersion);
  PutU64(b + 8, last_committed);
  AppendFrame(out, FrameType::kWelcome, b);
}
inline void AppendAck(std::string* out, uint64_t seq) {
  uint8_t b[8];
  PutU64(b, seq);
  AppendFrame(out, FrameType::kAck, b);
}
inline void AppendError(std::string* out, ErrorCode code, std::string_view text) {
  uint8_t b[4];
  PutU32(b, static_cast<uint32_t>(code));
  AppendFrame(out, FrameType::kError, b, text);
}

// ---- decoding ----

enum class DecodeStatus : uint8_t {
  kFrame,      // *frame is valid; consume frame->size bytes
  kNeedMore,   // a prefix of a valid frame: read more bytes
  kBadMagic,   // not a frame boundary: garbage or a desynchronised stream
  kBadHeader,  // unknown type, non-zero flags/reserved
  kTooLarge,   // length above the limit: rejected before buffering it
  kBadCrc,     // header or body corrupted
  kBadBody,    // the body does not fit its type (e.g. an ACK that is not 8 bytes)
};

inline const char* DecodeStatusName(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kFrame:
      return "frame";
    case DecodeStatus::kNeedMore:
      return "need_more";
    case DecodeStatus::kBadMagic:
      return "bad_magic";
    case DecodeStatus::kBadHeader:
      return "bad_header";
    case DecodeStatus::kTooLarge:
      return "too_large";
    case DecodeStatus::kBadCrc:
      return "bad_crc";
    case DecodeStatus::kBadBody:
      return "bad_body";
  }
  return "unknown";
}

struct Frame {
  FrameType type = FrameType::kEvent;
  size_t size = 0;  // header + body
  std::span<const uint8_t> body;
  // Decoded fields, by type.
  uint64_t seq = 0;       // EVENT, ACK, WELCOME (last committed), HELLO (client next seq)
  uint16_t version = 0;   // HELLO, WELCOME
  uint32_t code = 0;      // ERROR
  std::string_view text;  // EVENT payload, HELLO sensor name, ERROR text
};

// Decodes the frame at the start of `buf`. Never reads outside `buf`; a length above `max_body`
// is rejected from the header alone, so a receiver never buffers more than
// kHeaderBytes + max_body bytes for one frame.
inline DecodeStatus DecodeFrame(std::span<const uint8_t> buf, uint32_t max_body, Frame* f) {
  const size_t have = buf.size();
  const uint8_t* p = buf.data();
  // Reject a wrong magic as soon as its first bytes arrive, so garbage closes a connection
  // without waiting for 16 bytes.
  for (size_t i = 0; i < 4 && i < have; ++i) {
    if (p[i] != static_cast<uint8_t>(kFrameMagic >> (8 * i))) return DecodeStatus::kBadMagic;
  }
  if (have < kHeaderBytes) return DecodeStatus::kNeedMore;
  const uint8_t type = p[4];
  if (type < 1 || type > 5 || p[5] != 0 || GetU16(p + 6) != 0) return DecodeStatus::kBadHeader;
  const uint32_t length = GetU32(p + 8);
  if (length > max_body) return DecodeStatus::kTooLarge;
  if (have - kHeaderBytes < length) return DecodeStatus::kNeedMore;
  uint32_t crc = Crc32c(0, p + 4, 8);
  crc = Crc32c(crc, p + kHeaderBytes, length);
  if (crc != GetU32(p + 12)) return DecodeStatus::kBadCrc;
  const uint8_t* b = p + kHeaderBytes;
  *f = Frame{};
  f->type = static_cast<FrameType>(type);
  f->size = kHeaderBytes + length;
  f->body = std::span<const uint8_t>(b, length);
  switch (f->type) {
    case FrameType::kHello: {
      if (length < kHelloFixed) return DecodeStatus::kBadBody;
      const uint16_t name_len = GetU16(b + 2);
      if (name_len == 0 || name_len > kMaxSensorName || kHelloFixed + name_len != length) {
        return DecodeStatus::kBadBody;
      }
      f->version = GetU16(b);
      f->seq = GetU64(b + 8);
      f->text = std::string_view(reinterpret_cast<const char*>(b + kHelloFixed), name_len);
      break;
    }
    case FrameType::kWelcome:
      if (length != 16) return DecodeStatus::kBadBody;
      f->version = GetU16(b);
      f->seq = GetU64(b + 8);
      break;
    case FrameType::kEvent:
      if (length < kEventFixed) return DecodeStatus::kBadBody;
      f->seq = GetU64(b);
      if (f->seq == 0) return DecodeStatus::kBadBody;
      f->text =
          std::string_view(reinterpret_cast<const char*>(b + kEventFixed), length - kEventFixed);
      break;
    case FrameType::kAck:
      if (length != 8) return DecodeStatus::kBadBody;
      f->seq = GetU64(b);
      break;
    case FrameType::kError:
      if (length < 4) return DecodeStatus::kBadBody;
      f->code = GetU32(b);
      f->text = std::string_view(reinterpret_cast<const char*>(b + 4), length - 4);
      break;
  }
  return DecodeStatus::kFrame;
}

// A sensor name is 1..kMaxSensorName printable ASCII bytes without '/' (it names journal
// directories and store rows).
inline bool ValidSensorName(std::string_view s) {
  if (s.empty() || s.size() > kMaxSensorName) return false;
  for (char c : s) {
    if (c <= ' ' || c > '~' || c == '/') return false;
  }
  return true;
}

}  // namespace vigil::channel
