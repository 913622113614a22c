// A bounded JSON writer into a caller-owned buffer, for events built on the worker cores.
//
// Thread: one owner. Never allocates, never throws. When a member does not fit, it is left out
// whole (the output rolls back to before it), truncated() becomes true, and the document stays
// valid JSON: room for the closing brackets of every open container is always kept in reserve.
//
// Strings are escaped as JSON requires; bytes that are not valid UTF-8 are written as \u00XX (their
// Latin-1 reading), so any wire bytes produce valid JSON.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vigil::proto {

class JsonWriter {
 public:
  static constexpr int kMaxDepth = 24;

  JsonWriter(char* buf, size_t cap) noexcept : buf_(buf), cap_(cap) {}

  // Starts again with an empty member list (as if inside an already open object).
  void Reset() noexcept;

  // Every call takes the member's key; inside an array pass an empty key (it is ignored).
  void ObjectBegin(std::string_view key) noexcept;
  void ObjectEnd() noexcept;
  void ArrayBegin(std::string_view key) noexcept;
  void ArrayEnd() noexcept;
  void Str(std::string_view key, std::string_view value) noexcept;
  // Bytes that may not be text (wire strings): same escaping as Str.
  void Bytes(std::string_view key, std::span<const uint8_t> value) noexcept;
  void Uint(std::string_view key, uint64_t value) noexcept;
  void Int(std::string_view key, int64_t value) noexcept;
  void Bool(std::string_view key, bool value) noexcept;
  void Null(std::string_view key) noexcept;
  // Lower-case hex of `value`, as a string ("0a1b...").
  void Hex(std::string_view key, std::span<const uint8_t> value) noexcept;
  // A value already formatted as JSON (number, literal or escaped string with its quotes).
  void Raw(std::string_view key, std::string_view json) noexcept;

  // The members written so far, without an enclosing brace, e.g. `"a":1,"b":{"c":2}`. Containers
  // still open are not closed: call this at depth 0.
  std::string_view view() const noexcept { return {buf_, len_}; }
  size_t size() const noexcept { return len_; }
  int depth() const noexcept { return depth_; }
  bool truncated() const noexcept { return truncated_; }
  bool empty() const noexcept { return len_ == 0; }

 private:
  // Writes the separator and key for a new member; false (nothing written) when skipping.
  bool BeginMember(std::string_view key, size_t* mark) noexcept;
  bool Put(std::string_view s) noexcept;
  bool PutChar(char c) noexcept;
  // A quoted, escaped string; false when it does not fit (the caller rolls back).
  bool PutEscaped(std::span<const uint8_t> s) noexcept;
  // The rest of a string whose opening quote is written: escaped, then the closing quote.
  bool PutEscapedTail(std::span<const uint8_t> s) noexcept;
  // Rolls back to `mark` and flags truncation.
  void Abandon(size_t mark) noexcept;
  size_t limit() const noexcept { return cap_ > reserve_ ? cap_ - reserve_ : 0; }

  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  size_t reserve_ = 0;  // bytes kept for closing brackets of open containers
  int depth_ = 0;
  int skip_depth_ = 0;  // > 0: inside a container that did not fit; writes are dropped
  bool truncated_ = false;
  bool first_[kMaxDepth + 1] = {true};
  bool in_array_[kMaxDepth + 1] = {false};
};

// A short bounded line of text (an event's `message`). Appends past the capacity are cut and
// flagged; the text stays whatever was appended (not escaped: the exporter escapes it).
class TextBuilder {
 public:
  static constexpr size_t kCapacity = 320;
  void Clear() noexcept {
    len_ = 0;
    truncated_ = false;
  }
  TextBuilder& Append(std::string_view s) noexcept;
  TextBuilder& Append(char c) noexcept { return Append(std::string_view(&c, 1)); }
  TextBuilder& AppendUint(uint64_t v) noexcept;
  // "0x" and 8 hex digits.
  TextBuilder& AppendHex32(uint32_t v) noexcept;
  std::string_view view() const noexcept { return {buf_, len_}; }
  bool truncated() const noexcept { return truncated_; }
  bool empty() const noexcept { return len_ == 0; }

 private:
  char buf_[kCapacity];
  size_t len_ = 0;
  bool truncated_ = false;
};

}  // namespace vigil::proto
