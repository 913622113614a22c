// A bounded BER/DER element reader for the authentication decoders (SPNEGO, Kerberos).
//
// It reads one element header at a time (class, constructed bit, tag number including the
// high-tag-number form, definite length) and hands out the content as a span of the input. It
// never recurses: callers descend by opening a new Asn1Reader on an element's content, so the
// nesting depth is bounded by the fixed schema the caller walks, never by the input.
//
// Rejected: indefinite lengths (0x80), lengths of more than 4 bytes, non-minimal (overlong)
// length encodings, high tag numbers that do not fit 28 bits or have a leading 0x80 byte.
//
// Partial mode: decoders that see only a prefix of a long message (a Kerberos record larger than
// the parser's buffer) may accept an element whose declared length runs past the end of the
// input; its `content` is then the bytes that are there and `complete` is false.
//
// Thread: any. Header-only, no allocation, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vigil::proto {

enum class Asn1Class : uint8_t { kUniversal = 0, kApplication = 1, kContext = 2, kPrivate = 3 };

// Universal tag numbers the decoders use.
inline constexpr uint32_t kAsn1Integer = 2;
inline constexpr uint32_t kAsn1BitString = 3;
inline constexpr uint32_t kAsn1OctetString = 4;
inline constexpr uint32_t kAsn1Oid = 6;
inline constexpr uint32_t kAsn1Enumerated = 10;
inline constexpr uint32_t kAsn1Sequence = 16;
inline constexpr uint32_t kAsn1GeneralString = 27;

struct Asn1Element {
  Asn1Class cls = Asn1Class::kUniversal;
  bool constructed = false;
  uint32_t tag = 0;
  uint32_t header_len = 0;           // identifier + length octets
  uint32_t length = 0;               // declared content length
  std::span<const uint8_t> content;  // the content bytes present in the input
  bool complete = true;              // content.size() == length

  bool Is(Asn1Class c, uint32_t t) const noexcept { return cls == c && tag == t; }
  bool IsContext(uint32_t t) const noexcept { return Is(Asn1Class::kContext, t); }
  bool IsUniversal(uint32_t t) const noexcept { return Is(Asn1Class::kUniversal, t); }
};

enum class Asn1Status : uint8_t {
  kOk,         // an element was read
  kEnd,        // no bytes left
  kTruncated,  // the header or (outside partial mode) the content runs past the input
  kBad,        // an encoding this reader rejects (indefinite/overlong/huge length, bad tag)
};

// Reads the header at the start of `in`. On kOk fills *e (content limited to `in`).
inline Asn1Status Asn1ReadHeader(std::span<const uint8_t> in, bool allow_partial,
                                 Asn1Element* e) noexcept {
  if (in.empty()) return Asn1Status::kEnd;
  size_t p = 0;
  const uint8_t id = in[p++];
  e->cls = static_cast<Asn1Class>(id >> 6);
  e->constructed = (id & 0x20) != 0;
  uint32_t tag = id & 0x1f;
  if (tag == 0x1f) {
    // High-tag-number form: base-128, at most 4 octets (28 bits), no leading zero septet.
    tag = 0;
    for (int i = 0;; ++i) {
      if (p >= in.size()) return Asn1Status::kTruncated;
      const uint8_t b = in[p++];
      if (i == 0 && b == 0x80) return Asn1Status::kBad;
      if (i == 4) return Asn1Status::kBad;
      tag = (tag << 7) | (b & 0x7f);
      if ((b & 0x80) == 0) break;
    }
  }
  e->tag = tag;
  if (p >= in.size()) return Asn1Status::kTruncated;
  const uint8_t l0 = in[p++];
  uint32_t len = 0;
  if (l0 < 0x80) {
    len = l0;
  } else {
    const uint8_t n = l0 & 0x7f;
    if (n == 0 || n > 4) return Asn1Status::kBad;  // indefinite, or larger than 4 GiB
    if (in.size() - p < n) return Asn1Status::kTruncated;
    if (in[p] == 0) return Asn1Status::kBad;  // leading zero octet: overlong
    for (uint8_t i = 0; i < n; ++i) len = (len << 8) | in[p++];
    if (len < 0x80) return Asn1Status::kBad;  // long form for a short length: overlong
  }
  e->header_len = static_cast<uint32_t>(p);
  e->length = len;
  const size_t avail = in.size() - p;
  if (len <= avail) {
    e->content = in.subspan(p, len);
    e->complete = true;
  } else {
    if (!allow_partial) return Asn1Status::kTruncated;
    e->content = in.subspan(p);
    e->complete = false;
  }
  return Asn1Status::kOk;
}

// Iterates the elements of one level (a constructed element's content, or a whole buffer).
class Asn1Reader {
 public:
  explicit Asn1Reader(std::span<const uint8_t> data, bool allow_partial = false) noexcept
      : data_(data), allow_partial_(allow_partial) {}

  // The next element. After an incomplete element (partial mode) the reader is at its end.
  Asn1Status Next(Asn1Element* e) noexcept {
    if (status_ != Asn1Status::kOk) return status_;
    const Asn1Status s = Asn1ReadHeader(data_.subspan(pos_), allow_partial_, e);
    if (s != Asn1Status::kOk) {
      status_ = s;
      return s;
    }
    pos_ += e->header_len + e->content.size();
    return s;
  }
  bool AtEnd() const noexcept { return pos_ >= data_.size(); }
  size_t pos() const noexcept { return pos_; }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  Asn1Status status_ = Asn1Status::kOk;
  bool allow_partial_;
};

// A two's-complement INTEGER (or ENUMERATED) content of 1..8 octets.
inline bool Asn1ToInt64(std::span<const uint8_t> c, int64_t* out) noexcept {
  if (c.empty() || c.size() > 8) return false;
  uint64_t v = (c[0] & 0x80) ? ~uint64_t{0} : 0;
  for (const uint8_t b : c) v = (v << 8) | b;
  *out = static_cast<int64_t>(v);
  return true;
}

inline bool Asn1ToInt32(std::span<const uint8_t> c, int32_t* out) noexcept {
  int64_t v = 0;
  if (!Asn1ToInt64(c, &v) || v < INT32_MIN || v > INT32_MAX) return false;
  *out = static_cast<int32_t>(v);
  return true;
}

// True when `e` is a complete OBJECT IDENTIFIER whose content octets equal `oid`.
inline bool Asn1OidIs(const Asn1Element& e, std::span<const uint8_t> oid) noexcept {
  if (!e.IsUniversal(kAsn1Oid) || !e.complete || e.content.size() != oid.size()) return false;
  for (size_t i = 0; i < oid.size(); ++i) {
    if (e.content[i] != oid[i]) return false;
  }
  return true;
}

// Reads the single element inside an explicit tag ([n] EXPLICIT T): the first element of
// `outer.content`. The inner element may be incomplete only when `outer` is.
inline Asn1Status Asn1Inner(const Asn1Element& outer, Asn1Element* inner) noexcept {
  return Asn1ReadHeader(outer.content, !outer.complete, inner);
}

// A reader over an element's content; partial only when the element itself is incomplete.
inline Asn1Reader Asn1Children(const Asn1Element& e) noexcept {
  return Asn1Reader(e.content, !e.complete);
}

}  // namespace vigil::proto
