#include "dataplane/proto/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>

namespace vigil::proto {

void JsonWriter::Reset() noexcept {
  len_ = 0;
  reserve_ = 0;
  depth_ = 0;
  skip_depth_ = 0;
  truncated_ = false;
  first_[0] = true;
  in_array_[0] = false;
}

bool JsonWriter::Put(std::string_view s) noexcept {
  if (len_ + s.size() > limit()) return false;
  if (!s.empty()) std::memcpy(buf_ + len_, s.data(), s.size());
  len_ += s.size();
  return true;
}

bool JsonWriter::PutChar(char c) noexcept {
  if (len_ + 1 > limit()) return false;
  buf_[len_++] = c;
  return true;
}

namespace {

// Bytes that go into a JSON string as they are: printable ASCII except '"' and '\\'.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// Length of the run of plain bytes at the start of [p, p + n).
size_t PlainRun(const uint8_t* p, size_t n) noexcept {
  size_t k = 0;
  while (k < n && kPlain[p[k]]) ++k;
  return k;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid.
size_t Utf8SeqLen(std::span<const uint8_t> s, size_t i) noexcept {
  const uint8_t c = s[i];
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return n;
}

}  // namespace

// Most strings (keys, names, numbers as text) are plain ASCII: when the string fits unescaped, it
// is copied in one pass with one bounds check. Otherwise (a byte to escape, or too little room to
// tell) plain runs are still copied whole and only the other bytes go one at a time. Either way
// the bytes written are the same, and false (caller rolls back) exactly when they do not fit.
bool JsonWriter::PutEscaped(std::span<const uint8_t> s) noexcept {
  const uint8_t* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  if (len_ + n + 2 <= limit()) {
    char* out = buf_ + len_ + 1;
    out[-1] = '"';
    for (; i < n && kPlain[p[i]]; ++i) out[i] = static_cast<char>(p[i]);
    if (i == n) {
      out[n] = '"';
      len_ += n + 2;
      return true;
    }
    len_ += 1 + i;  // the opening quote and the plain prefix stay; the rest below
  } else if (!PutChar('"')) {
    return false;
  }
  return PutEscapedTail(s.subspan(i));
}

bool JsonWriter::PutEscapedTail(std::span<const uint8_t> s) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    const size_t run = PlainRun(s.data() + i, s.size() - i);
    if (run != 0) {
      if (!Put(std::string_view(reinterpret_cast<const char*>(s.data() + i), run))) return false;
      i += run;
      continue;
    }
    const uint8_t c = s[i];
    if (c >= 0x80) {
      const size_t n = Utf8SeqLen(s, i);
      if (n != 0) {
        if (!Put(std::string_view(reinterpret_cast<const char*>(s.data() + i), n))) return false;
        i += n;
        continue;
      }
    }
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
      case '"':
        esc[1] = '"';
        break;
      case '\\':
        esc[1] = '\\';
        break;
      case '\n':
        esc[1] = 'n';
        break;
      case '\r':
        esc[1] = 'r';
        break;
      case '\t':
        esc[1] = 't';
        break;
      case '\b':
        esc[1] = 'b';
        break;
      case '\f':
        esc[1] = 'f';
        break;
      default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = kHex[c >> 4];
        esc[5] = kHex[c & 15];
        n = 6;
    }
    if (!Put(std::string_view(esc, n))) return false;
    ++i;
  }
  return PutChar('"');
}

void JsonWriter::Abandon(size_t mark) noexcept {
  len_ = mark;
  truncated_ = true;
}

bool JsonWriter::BeginMember(std::string_view key, size_t* mark) noexcept {
  if (skip_depth_ > 0) return false;
  *mark = len_;
  const bool comma = !first_[depth_];
  if (in_array_[depth_]) return !comma || PutChar(',');
  // Keys are nearly always constants that need no escaping: `,"key":` in one pass when it fits.
  const size_t n = key.size();
  if (len_ + n + 3 + (comma ? 1 : 0) <= limit()) {
    char* out = buf_ + len_;
    if (comma) *out++ = ',';
    *out++ = '"';
    size_t i = 0;
    for (; i < n && kPlain[static_cast<uint8_t>(key[i])]; ++i) out[i] = key[i];
    if (i == n) {
      out[n] = '"';
      out[n + 1] = ':';
      len_ = static_cast<size_t>(out + n + 2 - buf_);
      return true;
    }
    len_ = *mark;  // a byte to escape: the general path below writes it all again
  }
  if (comma && !PutChar(',')) return false;
  return PutEscaped({reinterpret_cast<const uint8_t*>(key.data()), key.size()}) && PutChar(':');
}

void JsonWriter::ObjectBegin(std::string_view key) noexcept {
  size_t mark = len_;
  if (skip_depth_ > 0 || depth_ >= kMaxDepth) {
    if (skip_depth_ == 0) truncated_ = true;
    ++skip_depth_;
    return;
  }
  // The opening brace plus one byte more of reserve for the closing one.
  if (!BeginMember(key, &mark) || len_ + 2 > limit()) {
    Abandon(mark);
    ++skip_depth_;
    return;
  }
  buf_[len_++] = '{';
  ++reserve_;
  first_[depth_] = false;
  ++depth_;
  first_[depth_] = true;
  in_array_[depth_] = false;
}

void JsonWriter::ArrayBegin(std::string_view key) noexcept {
  ObjectBegin(key);
  if (skip_depth_ == 0) {
    buf_[len_ - 1] = '[';
    in_array_[depth_] = true;
  }
}

void JsonWriter::ObjectEnd() noexcept {
  if (skip_depth_ > 0) {
    --skip_depth_;
    return;
  }
  if (depth_ == 0) return;  // unbalanced: ignore rather than corrupt
  --reserve_;
  buf_[len_++] = in_array_[depth_] ? ']' : '}';
  --depth_;
}

void JsonWriter::ArrayEnd() noexcept { ObjectEnd(); }

void JsonWriter::Str(std::string_view key, std::string_view value) noexcept {
  Bytes(key, {reinterpret_cast<const uint8_t*>(value.data()), value.size()});
}

void JsonWriter::Bytes(std::string_view key, std::span<const uint8_t> value) noexcept {
  size_t mark;
  if (!BeginMember(key, &mark)) {
    if (skip_depth_ == 0) Abandon(mark);
    return;
  }
  if (!PutEscaped(value)) return Abandon(mark);
  first_[depth_] = false;
}

void JsonWriter::Raw(std::string_view key, std::string_view json) noexcept {
  size_t mark;
  if (!BeginMember(key, &mark)) {
    if (skip_depth_ == 0) Abandon(mark);
    return;
  }
  if (!Put(json)) return Abandon(mark);
  first_[depth_] = false;
}

void JsonWriter::Uint(std::string_view key, uint64_t value) noexcept {
  char tmp[24];
  const auto r = std::to_chars(tmp, tmp + sizeof tmp, value);
  Raw(key, std::string_view(tmp, static_cast<size_t>(r.ptr - tmp)));
}

void JsonWriter::Int(std::string_view key, int64_t value) noexcept {
  char tmp[24];
  const auto r = std::to_chars(tmp, tmp + sizeof tmp, value);
  Raw(key, std::string_view(tmp, static_cast<size_t>(r.ptr - tmp)));
}

void JsonWriter::Bool(std::string_view key, bool value) noexcept {
  Raw(key, value ? "true" : "false");
}

void JsonWriter::Null(std::string_view key) noexcept { Raw(key, "null"); }

void JsonWriter::Hex(std::string_view key, std::span<const uint8_t> value) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t mark;
  if (!BeginMember(key, &mark)) {
    if (skip_depth_ == 0) Abandon(mark);
    return;
  }
  if (len_ + 2 * value.size() + 2 > limit()) return Abandon(mark);
  buf_[len_++] = '"';
  for (uint8_t b : value) {
    buf_[len_++] = kHex[b >> 4];
    buf_[len_++] = kHex[b & 15];
  }
  buf_[len_++] = '"';
  first_[depth_] = false;
}

TextBuilder& TextBuilder::Append(std::string_view s) noexcept {
  size_t n = s.size();
  if (n > kCapacity - len_) {
    n = kCapacity - len_;
    truncated_ = true;
  }
  if (n != 0) std::memcpy(buf_ + len_, s.data(), n);
  len_ += n;
  return *this;
}

TextBuilder& TextBuilder::AppendUint(uint64_t v) noexcept {
  char tmp[24];
  const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  return Append(std::string_view(tmp, static_cast<size_t>(r.ptr - tmp)));
}

TextBuilder& TextBuilder::AppendHex32(uint32_t v) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  char tmp[10] = {'0', 'x'};
  for (int i = 0; i < 8; ++i) tmp[2 + i] = kHex[(v >> (28 - 4 * i)) & 15];
  return Append(std::string_view(tmp, 10));
}

}  // namespace vigil::proto
