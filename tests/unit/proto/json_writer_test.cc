// JsonWriter: escaping of every control character and of invalid UTF-8 (overlongs, surrogates,
// cut sequences), valid UTF-8 kept, the nesting limit, truncation at every capacity of a fixed
// document (always valid JSON, members dropped whole, nothing written past the capacity), and the
// writer against the byte-at-a-time writer it replaced (RefWriter below): the same bytes, the same
// truncation, for every 1- and 2-byte string, random strings and random documents at random
// capacities. TextBuilder's cut at its capacity.
#include "dataplane/proto/json_writer.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace vigil::proto {
namespace {

std::span<const uint8_t> U8(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// --- the reference: the writer before its fast paths (one PutChar and bounds check a byte) -----

class RefWriter {
 public:
  RefWriter(char* buf, size_t cap) : buf_(buf), cap_(cap) {}
  void ObjectBegin(std::string_view key) {
    size_t mark = len_;
    if (skip_depth_ > 0 || depth_ >= JsonWriter::kMaxDepth) {
      if (skip_depth_ == 0) truncated_ = true;
      ++skip_depth_;
      return;
    }
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
  void ArrayBegin(std::string_view key) {
    ObjectBegin(key);
    if (skip_depth_ == 0) {
      buf_[len_ - 1] = '[';
      in_array_[depth_] = true;
    }
  }
  void End() {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return;
    }
    if (depth_ == 0) return;
    --reserve_;
    buf_[len_++] = in_array_[depth_] ? ']' : '}';
    --depth_;
  }
  void Bytes(std::string_view key, std::span<const uint8_t> value) {
    size_t mark;
    if (!BeginMember(key, &mark)) {
      if (skip_depth_ == 0) Abandon(mark);
      return;
    }
    if (!PutEscaped(value)) return Abandon(mark);
    first_[depth_] = false;
  }
  void Raw(std::string_view key, std::string_view json) {
    size_t mark;
    if (!BeginMember(key, &mark)) {
      if (skip_depth_ == 0) Abandon(mark);
      return;
    }
    if (!Put(json)) return Abandon(mark);
    first_[depth_] = false;
  }
  std::string_view view() const { return {buf_, len_}; }
  bool truncated() const { return truncated_; }
  int depth() const { return depth_; }

 private:
  static size_t Utf8SeqLen(std::span<const uint8_t> s, size_t i) {
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
  bool Put(std::string_view s) {
    if (len_ + s.size() > limit()) return false;
    for (char c : s) buf_[len_++] = c;
    return true;
  }
  bool PutChar(char c) { return Put(std::string_view(&c, 1)); }
  bool PutEscaped(std::span<const uint8_t> s) {
    static constexpr char kHex[] = "0123456789abcdef";
    if (!PutChar('"')) return false;
    for (size_t i = 0; i < s.size();) {
      const uint8_t c = s[i];
      if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
        if (!PutChar(static_cast<char>(c))) return false;
        ++i;
        continue;
      }
      if (c >= 0x80) {
        const size_t n = Utf8SeqLen(s, i);
        if (n != 0) {
          if (!Put(std::string_view(reinterpret_cast<const char*>(s.data() + i), n))) return false;
          i += n;
          continue;
        }
      }
      char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
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
          n = 6;
      }
      if (!Put(std::string_view(esc, n))) return false;
      ++i;
    }
    return PutChar('"');
  }
  bool BeginMember(std::string_view key, size_t* mark) {
    if (skip_depth_ > 0) return false;
    *mark = len_;
    if (!first_[depth_] && !PutChar(',')) return false;
    if (!in_array_[depth_]) {
      if (!PutEscaped(U8(key)) || !PutChar(':')) return false;
    }
    return true;
  }
  void Abandon(size_t mark) {
    len_ = mark;
    truncated_ = true;
  }
  size_t limit() const { return cap_ > reserve_ ? cap_ - reserve_ : 0; }

  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  size_t reserve_ = 0;
  int depth_ = 0;
  int skip_depth_ = 0;
  bool truncated_ = false;
  bool first_[JsonWriter::kMaxDepth + 1] = {true};
  bool in_array_[JsonWriter::kMaxDepth + 1] = {false};
};

// --- a strict JSON reader (RFC 8259, UTF-8 checked) that keeps the document as a tree ----------

struct JValue {
  enum class Kind : uint8_t { kScalar, kObject, kArray };
  Kind kind = Kind::kScalar;
  std::string text;               // scalars: their JSON text (strings quoted)
  std::vector<std::string> keys;  // objects: the members' keys; arrays: "" for each item
  std::vector<JValue> items;      // containers: the members' values, the items
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  // The whole text is one value: `out`, true. False (with `error`) when not valid JSON.
  bool Document(JValue* out) {
    if (!Value(out, 0)) return false;
    Ws();
    return pos_ == s_.size() || Fail("trailing bytes");
  }
  std::string error;

 private:
  bool Fail(const char* why) {
    error = std::string(why) + " at offset " + std::to_string(pos_);
    return false;
  }
  void Ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    Ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Value(JValue* v, int depth) {
    if (depth > 64) return Fail("too deep");
    Ws();
    if (pos_ >= s_.size()) return Fail("value expected");
    const char c = s_[pos_];
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      v->kind = c == '{' ? JValue::Kind::kObject : JValue::Kind::kArray;
      ++pos_;
      if (Eat(close)) return true;
      for (;;) {
        std::string key;
        if (c == '{') {
          Ws();
          if (!String(&key)) return false;
          if (!Eat(':')) return Fail("':' expected");
        }
        JValue item;
        if (!Value(&item, depth + 1)) return false;
        v->keys.push_back(std::move(key));
        v->items.push_back(std::move(item));
        if (Eat(close)) return true;
        if (!Eat(',')) return Fail("',' or close expected");
      }
    }
    if (c == '"') return String(&v->text);
    for (const char* lit : {"true", "false", "null"}) {
      if (s_.substr(pos_, std::strlen(lit)) == lit) {
        v->text = lit;
        pos_ += std::strlen(lit);
        return true;
      }
    }
    return Number(&v->text);
  }
  bool Number(std::string* out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t b = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - b;
    };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return Fail("value expected");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Fail("fraction digits expected");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Fail("exponent digits expected");
    }
    *out = std::string(s_.substr(start, pos_ - start));
    return true;
  }
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool String(std::string* out) {
    const size_t start = pos_;
    if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("string expected");
    ++pos_;
    for (;;) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const auto c = static_cast<uint8_t>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) return Fail("raw control character in string");
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return Fail("cut escape");
        const char e = s_[pos_ + 1];
        if (e == 'u') {
          if (pos_ + 6 > s_.size()) return Fail("cut \\u escape");
          for (size_t k = 2; k < 6; ++k) {
            if (Hex(s_[pos_ + k]) < 0) return Fail("bad \\u escape");
          }
          pos_ += 6;
        } else if (std::strchr("\"\\/bfnrt", e) != nullptr && e != 0) {
          pos_ += 2;
        } else {
          return Fail("bad escape");
        }
        continue;
      }
      if (c < 0x80) {
        ++pos_;
        continue;
      }
      // Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.
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
        return Fail("invalid UTF-8 lead byte");
      }
      if (pos_ + n > s_.size()) return Fail("cut UTF-8 sequence");
      for (size_t k = 1; k < n; ++k) {
        const auto b = static_cast<uint8_t>(s_[pos_ + k]);
        if ((b & 0xc0) != 0x80) return Fail("invalid UTF-8 continuation");
        cp = (cp << 6) | (b & 0x3f);
      }
      if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return Fail("overlong UTF-8");
      if (cp >= 0xd800 && cp <= 0xdfff) return Fail("UTF-8 surrogate");
      if (cp > 0x10ffff) return Fail("UTF-8 above U+10FFFF");
      pos_ += n;
    }
    ++pos_;
    *out = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// The members a writer wrote (no braces around them) as one JSON object; fails the test when the
// text is not valid JSON.
JValue ParseMembers(std::string_view members) {
  const std::string doc = "{" + std::string(members) + "}";
  JsonReader r(doc);
  JValue v;
  EXPECT_TRUE(r.Document(&v)) << r.error << " in " << doc;
  return v;
}

// `part` is `full` with members (and array items) left out whole: in each container, part's
// members are an in-order subsequence of full's, the same key and (recursively) the same value.
bool SubsetOf(const JValue& part, const JValue& full) {
  if (part.kind != full.kind) return false;
  if (part.kind == JValue::Kind::kScalar) return part.text == full.text;
  size_t j = 0;
  for (size_t i = 0; i < part.items.size(); ++i) {
    while (j < full.items.size() &&
           !(full.keys[j] == part.keys[i] && SubsetOf(part.items[i], full.items[j]))) {
      ++j;
    }
    if (j == full.items.size()) return false;
    ++j;
  }
  return true;
}

std::string Escaped(std::string_view bytes) {
  char buf[4096];
  JsonWriter w(buf, sizeof buf);
  w.Bytes("k", U8(bytes));
  const std::string_view v = w.view();
  EXPECT_EQ(v.substr(0, 4), "\"k\":");
  return std::string(v.substr(4));
}

std::string RefEscaped(std::string_view bytes) {
  char buf[4096];
  RefWriter w(buf, sizeof buf);
  w.Bytes("k", U8(bytes));
  return std::string(w.view().substr(4));
}

// --- escaping ------------------------------------------------------------------------------------

TEST(JsonWriter, EveryControlCharacterIsEscaped) {
  static const char* const kShort[0x20] = {
      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
      "\\b",   "\\t",   "\\n",   nullptr, "\\f",   "\\r",   nullptr, nullptr,
  };
  for (int c = 0; c < 0x20; ++c) {
    const std::string in(1, static_cast<char>(c));
    char expect[8];
    if (kShort[c] != nullptr) {
      std::snprintf(expect, sizeof expect, "%s", kShort[c]);
    } else {
      std::snprintf(expect, sizeof expect, "\\u%04x", c);
    }
    EXPECT_EQ(Escaped(in), "\"" + std::string(expect) + "\"") << "byte " << c;
    // Inside a plain run too, and as a key.
    EXPECT_EQ(Escaped("ab" + in + "cd"), "\"ab" + std::string(expect) + "cd\"") << "byte " << c;
    char buf[64];
    JsonWriter w(buf, sizeof buf);
    w.Uint("x" + in, 1);
    EXPECT_EQ(w.view(), "\"x" + std::string(expect) + "\":1") << "byte " << c;
  }
  EXPECT_EQ(Escaped("\""), "\"\\\"\"");
  EXPECT_EQ(Escaped("\\"), "\"\\\\\"");
  EXPECT_EQ(Escaped("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(Escaped("\x7f"), "\"\x7f\"");  // DEL is allowed raw in JSON
  EXPECT_EQ(Escaped(""), "\"\"");
  std::string printable;
  for (int c = 0x20; c < 0x7f; ++c) {
    if (c != '"' && c != '\\') printable += static_cast<char>(c);
  }
  EXPECT_EQ(Escaped(printable), "\"" + printable + "\"");
}

TEST(JsonWriter, Utf8ValidKeptInvalidEscaped) {
  // Valid sequences, including the boundaries of each length, stay as they are.
  for (const char* ok : {"\xc2\x80", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac",
                         "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                         "\xf4\x8f\xbf\xbf", "caf\xc3\xa9 \xe2\x82\xac"}) {
    EXPECT_EQ(Escaped(ok), "\"" + std::string(ok) + "\"") << ok;
  }
  const std::pair<const char*, const char*> kBad[] = {
      {"\x80", "\\u0080"},                                   // lone continuation byte
      {"\xbf", "\\u00bf"},                                   //
      {"\xc0\x80", "\\u00c0\\u0080"},                        // overlong NUL
      {"\xc1\xbf", "\\u00c1\\u00bf"},                        // overlong 2-byte
      {"\xe0\x80\x80", "\\u00e0\\u0080\\u0080"},             // overlong 3-byte
      {"\xe0\x9f\xbf", "\\u00e0\\u009f\\u00bf"},             // overlong U+07FF
      {"\xf0\x80\x80\x80", "\\u00f0\\u0080\\u0080\\u0080"},  // overlong 4-byte
      {"\xf0\x8f\xbf\xbf", "\\u00f0\\u008f\\u00bf\\u00bf"},  // overlong U+FFFF
      {"\xed\xa0\x80", "\\u00ed\\u00a0\\u0080"},             // surrogate U+D800
      {"\xed\xbf\xbf", "\\u00ed\\u00bf\\u00bf"},             // surrogate U+DFFF
      {"\xf4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080"},  // U+110000
      {"\xf5\x80\x80\x80", "\\u00f5\\u0080\\u0080\\u0080"},  // lead byte above F4
      {"\xff", "\\u00ff"},                                   //
      {"\xfe", "\\u00fe"},                                   //
      {"\xe2\x82", "\\u00e2\\u0082"},                        // cut at the end of the string
      {"\xe2\x82x", "\\u00e2\\u0082x"},                      // cut by an ASCII byte
      {"\xc3\xc3\xa9", "\\u00c3\xc3\xa9"},                   // bad lead, then a valid sequence
      {"\xf0\x90\x80", "\\u00f0\\u0090\\u0080"},             // 4-byte sequence cut
  };
  for (const auto& [in, out] : kBad) {
    EXPECT_EQ(Escaped(in), "\"" + std::string(out) + "\"") << out;
  }
}

TEST(JsonWriter, SameBytesAsReferenceForEveryShortString) {
  for (int a = 0; a < 256; ++a) {
    const std::string one(1, static_cast<char>(a));
    ASSERT_EQ(Escaped(one), RefEscaped(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two = {static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(Escaped(two), RefEscaped(two)) << a << " " << b;
    }
  }
}

// Strings biased towards what needs care: runs of plain ASCII, escapes, UTF-8 lead and
// continuation bytes in and out of order.
std::string RandomString(std::mt19937& rng, size_t max_len) {
  static const char kPieces[][5] = {"a",    "Z",        "\\",       "\"",   "\n",   "\x01",
                                    "\x7f", "\xc3\xa9", "\xe2\x82", "\xac", "\xf0", "\x90\x80\x80",
                                    "\xed", "\xa0",     "\xff",     "/",    " "};
  std::string s;
  const size_t len = rng() % (max_len + 1);
  while (s.size() < len) {
    if (rng() % 3 == 0) {
      s += "plain_text-";
    } else {
      s += kPieces[rng() % (sizeof kPieces / sizeof kPieces[0])];
    }
  }
  return s;
}

TEST(JsonWriter, SameBytesAsReferenceForRandomStrings) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    const std::string s = RandomString(rng, 64);
    ASSERT_EQ(Escaped(s), RefEscaped(s));
    ParseMembers(std::string("\"k\":") + Escaped(s));
  }
}

// --- documents, truncation, nesting --------------------------------------------------------------

// One fixed document with every kind of member, nested containers and strings that need escaping.
template <class W>
void WriteDocument(W& w) {
  w.Str("event", "smb");
  w.Uint("id", 18446744073709551615ull);
  w.Int("neg", -42);
  w.ObjectBegin("smb");
  w.Str("command", "SMB2_COMMAND_CREATE");
  w.Str("filename", "dir\\file \"quoted\"\n\x01 caf\xc3\xa9 \xff\xed\xa0\x80");
  w.Bool("ok", true);
  w.Null("none");
  w.Hex("guid", U8("\x00\x11\x22\x33\xff"));
  w.ArrayBegin("dialects");
  w.Str("", "2.02");
  w.Str("", "3.1.1");
  w.ObjectBegin("");
  w.Uint("n", 7);
  w.ObjectEnd();
  w.ArrayBegin("");
  w.ArrayEnd();
  w.ArrayEnd();
  w.ObjectBegin("empty");
  w.ObjectEnd();
  w.Raw("raw", "{\"x\":[1,2]}");
  w.Str("k\"ey\x02", "v");
  w.ObjectEnd();
  w.Bytes("tail", U8("\xe2\x82\xac end"));
  w.Uint("last", 1);
}

// JsonWriter's calls under RefWriter's names, for WriteDocument.
struct RefAdapter {
  RefWriter& r;
  void Str(std::string_view k, std::string_view v) { r.Bytes(k, U8(v)); }
  void Bytes(std::string_view k, std::span<const uint8_t> v) { r.Bytes(k, v); }
  void Uint(std::string_view k, uint64_t v) {
    char t[24];
    r.Raw(k, std::string_view(t, static_cast<size_t>(std::to_chars(t, t + 24, v).ptr - t)));
  }
  void Int(std::string_view k, int64_t v) {
    char t[24];
    r.Raw(k, std::string_view(t, static_cast<size_t>(std::to_chars(t, t + 24, v).ptr - t)));
  }
  void Bool(std::string_view k, bool v) { r.Raw(k, v ? "true" : "false"); }
  void Null(std::string_view k) { r.Raw(k, "null"); }
  void Hex(std::string_view k, std::span<const uint8_t> v) {
    std::string s = "\"";
    for (uint8_t b : v) {
      s += "0123456789abcdef"[b >> 4];
      s += "0123456789abcdef"[b & 15];
    }
    r.Raw(k, s + "\"");
  }
  void Raw(std::string_view k, std::string_view v) { r.Raw(k, v); }
  void ObjectBegin(std::string_view k) { r.ObjectBegin(k); }
  void ArrayBegin(std::string_view k) { r.ArrayBegin(k); }
  void ObjectEnd() { r.End(); }
  void ArrayEnd() { r.End(); }
};

TEST(JsonWriter, TruncationAtEveryCapacity) {
  std::vector<char> big(4096);
  JsonWriter full_w(big.data(), big.size());
  WriteDocument(full_w);
  ASSERT_FALSE(full_w.truncated());
  ASSERT_EQ(full_w.depth(), 0);
  const std::string full(full_w.view());
  const JValue full_v = ParseMembers(full);
  for (size_t cap = 0; cap <= full.size() + 2; ++cap) {
    std::vector<char> buf(cap + 16, '#');
    JsonWriter w(buf.data(), cap);
    WriteDocument(w);
    const std::string out(w.view());
    EXPECT_LE(out.size(), cap);
    for (size_t i = cap; i < buf.size(); ++i) ASSERT_EQ(buf[i], '#') << "written past " << cap;
    EXPECT_EQ(w.depth(), 0);
    EXPECT_EQ(w.truncated(), cap < full.size()) << cap;
    if (cap >= full.size()) {
      EXPECT_EQ(out, full);
    }
    const JValue v = ParseMembers(out);
    EXPECT_TRUE(SubsetOf(v, full_v)) << "cap " << cap << ": " << out;
    // The byte-at-a-time writer kept or dropped exactly the same members.
    std::vector<char> ref_buf(cap + 16, '#');
    RefWriter ref(ref_buf.data(), cap);
    RefAdapter ra{ref};
    WriteDocument(ra);
    EXPECT_EQ(out, ref.view()) << cap;
    EXPECT_EQ(w.truncated(), ref.truncated()) << cap;
  }
}

TEST(JsonWriter, NestingLimit) {
  char buf[1024];
  JsonWriter w(buf, sizeof buf);
  const int levels = JsonWriter::kMaxDepth + 5;
  for (int i = 0; i < levels; ++i) {
    w.Uint("d", static_cast<uint64_t>(i));
    if (i % 2 == 0) {
      w.ObjectBegin("o");
    } else {
      w.ArrayBegin("a");
    }
  }
  EXPECT_EQ(w.depth(), JsonWriter::kMaxDepth);
  EXPECT_TRUE(w.truncated());
  for (int i = levels - 1; i >= 0; --i) {
    if (i % 2 == 0) {
      w.ObjectEnd();
    } else {
      w.ArrayEnd();
    }
  }
  EXPECT_EQ(w.depth(), 0);
  w.Str("after", "x");  // back at the top: written again
  const std::string out(w.view());
  EXPECT_EQ(out.substr(out.size() - 12), ",\"after\":\"x\"");
  JValue v = ParseMembers(out);
  int depth = 0;  // containers nested in the output
  for (const JValue* p = &v;;) {
    const JValue* next = nullptr;
    for (const JValue& item : p->items) {
      if (item.kind != JValue::Kind::kScalar) next = &item;
    }
    if (next == nullptr) break;
    ++depth;
    p = next;
  }
  EXPECT_EQ(depth, JsonWriter::kMaxDepth);
  // Unbalanced ends are ignored.
  w.ObjectEnd();
  w.ArrayEnd();
  EXPECT_EQ(w.depth(), 0);
  EXPECT_EQ(w.view(), out);
}

TEST(JsonWriter, RandomDocumentsMatchReferenceAtRandomCapacities) {
  std::mt19937 rng(777);
  for (int iter = 0; iter < 3000; ++iter) {
    const size_t cap = rng() % 700;
    std::vector<char> a(cap + 8, '#'), b(cap + 8, '#');
    JsonWriter w(a.data(), cap);
    RefWriter r(b.data(), cap);
    int open = 0;  // containers opened (kept or skipped) and not yet closed
    const int ops = static_cast<int>(rng() % 80);
    for (int op = 0; op < ops; ++op) {
      std::string key = rng() % 8 == 0 ? RandomString(rng, 6) : "key" + std::to_string(op);
      switch (rng() % 9) {
        case 0:
          if (open < JsonWriter::kMaxDepth + 3) {
            w.ObjectBegin(key);
            r.ObjectBegin(key);
            ++open;
          }
          break;
        case 1:
          if (open < JsonWriter::kMaxDepth + 3) {
            w.ArrayBegin(key);
            r.ArrayBegin(key);
            ++open;
          }
          break;
        case 2:
          if (open > 0) {
            w.ObjectEnd();
            r.End();
            --open;
          }
          break;
        case 3:
        case 4: {
          const std::string v = RandomString(rng, 40);
          w.Str(key, v);
          r.Bytes(key, U8(v));
          break;
        }
        case 5: {
          const uint64_t v = rng();
          w.Uint(key, v);
          char t[24];
          r.Raw(key, std::string_view(t, static_cast<size_t>(std::to_chars(t, t + 24, v).ptr - t)));
          break;
        }
        case 6:
          w.Bool(key, true);
          r.Raw(key, "true");
          break;
        case 7:
          w.Null(key);
          r.Raw(key, "null");
          break;
        default:
          w.Raw(key, "[1,{\"x\":2}]");
          r.Raw(key, "[1,{\"x\":2}]");
      }
      ASSERT_EQ(w.view(), r.view()) << "iter " << iter << " op " << op;
      ASSERT_EQ(w.truncated(), r.truncated());
      ASSERT_EQ(w.depth(), r.depth());
    }
    for (; open > 0; --open) {
      w.ObjectEnd();
      r.End();
    }
    ASSERT_EQ(w.view(), r.view());
    ASSERT_EQ(w.depth(), 0);
    EXPECT_LE(w.size(), cap);
    for (size_t i = cap; i < a.size(); ++i) ASSERT_EQ(a[i], '#');
    ParseMembers(w.view());
  }
}

TEST(JsonWriter, ResetStartsAgain) {
  char buf[16];
  JsonWriter w(buf, sizeof buf);
  w.Str("a", "0123456789abcdef");  // does not fit
  EXPECT_TRUE(w.truncated());
  EXPECT_TRUE(w.empty());
  w.Reset();
  EXPECT_FALSE(w.truncated());
  w.Uint("a", 1);
  w.Uint("b", 2);
  EXPECT_EQ(w.view(), "\"a\":1,\"b\":2");
}

// --- TextBuilder ---------------------------------------------------------------------------------

TEST(TextBuilder, CutAtCapacity) {
  TextBuilder t;
  const std::string chunk(100, 'x');
  t.Append(chunk).Append(chunk).Append(chunk);
  EXPECT_FALSE(t.truncated());
  t.Append("");
  EXPECT_FALSE(t.truncated());
  t.Append(std::string(TextBuilder::kCapacity - 300, 'y'));
  EXPECT_FALSE(t.truncated());
  EXPECT_EQ(t.view().size(), TextBuilder::kCapacity);
  t.Append("");
  EXPECT_FALSE(t.truncated());  // nothing was cut
  t.Append('z');
  EXPECT_TRUE(t.truncated());
  EXPECT_EQ(t.view().size(), TextBuilder::kCapacity);
  t.Clear();
  EXPECT_TRUE(t.empty());
  EXPECT_FALSE(t.truncated());
  t.Append(std::string(TextBuilder::kCapacity + 5, 'q'));
  EXPECT_TRUE(t.truncated());
  EXPECT_EQ(t.view(), std::string(TextBuilder::kCapacity, 'q'));
  t.Clear();
  t.Append("id ").AppendUint(18446744073709551615ull).Append(' ').AppendHex32(0xdeadbeef);
  EXPECT_EQ(t.view(), "id 18446744073709551615 0xdeadbeef");
}

}  // namespace
}  // namespace vigil::proto
