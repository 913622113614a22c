// An EventSink for tests and fuzz targets: keeps every committed event as one JSON object text,
// {"event_type":"smb","direction":"to_server",<members>,"message":"..."}.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/proto/event.h"

namespace vigil::proto::testing {

class CollectSink final : public EventSink {
 public:
  JsonWriter& Begin(std::string_view event_type, Direction dir) noexcept override {
    type_ = std::string(event_type);
    dir_ = dir;
    writer_.Reset();
    message_.Clear();
    return writer_;
  }
  TextBuilder& message() noexcept override { return message_; }
  void Commit() noexcept override {
    std::string s =
        "{\"event_type\":\"" + type_ + "\",\"direction\":\"" + DirectionName(dir_) + "\"";
    if (!writer_.empty()) s += "," + std::string(writer_.view());
    // The message through the same escaping as the members.
    char buf[1024];
    JsonWriter m(buf, sizeof buf);
    m.Str("message", message_.view());
    s += "," + std::string(m.view()) + "}";
    events.push_back(std::move(s));
    messages.emplace_back(message_.view());
    types.push_back(type_);
    if (writer_.depth() != 0) unbalanced = true;
  }
  uint64_t now_ns() const noexcept override { return now; }

  // The signature-engine seam: with `inspect` set, every message's buffers are kept as copies.
  bool inspecting() const noexcept override { return inspect; }
  void Inspect(Direction dir, const rules::Buffers& buffers) noexcept override {
    std::map<rules::Buffer, std::string> m;
    for (size_t i = 0; i < rules::kBufferCount; ++i) {
      const auto b = static_cast<rules::Buffer>(i);
      if (!buffers.Has(b)) continue;
      const std::span<const uint8_t> v = buffers.Get(b);
      m.emplace(b, std::string(reinterpret_cast<const char*>(v.data()), v.size()));
    }
    inspected.emplace_back(dir, std::move(m));
    std::map<rules::Buffer, std::vector<std::string>> multi;
    for (size_t i = 0; i < rules::kBufferCount; ++i) {
      const auto b = static_cast<rules::Buffer>(i);
      for (const std::span<const uint8_t> v : buffers.Items(b)) {
        multi[b].emplace_back(reinterpret_cast<const char*>(v.data()), v.size());
      }
    }
    items.push_back(std::move(multi));
    context.push_back(buffers.context_mask());
    dcerpc.push_back(buffers.dcerpc() != nullptr ? *buffers.dcerpc() : rules::DcerpcInfo{});
    krb5.push_back(buffers.krb5() != nullptr ? *buffers.krb5() : rules::Krb5Info{});
  }

  // Events whose JSON text contains `needle`.
  size_t CountContaining(std::string_view needle) const {
    size_t n = 0;
    for (const auto& e : events) n += e.find(needle) != std::string::npos;
    return n;
  }

  std::vector<std::string> events;
  std::vector<std::string> messages;
  std::vector<std::string> types;
  uint64_t now = 1'700'000'000'000'000'000ULL;
  bool unbalanced = false;  // a parser committed with containers left open
  bool inspect = false;
  std::vector<std::pair<Direction, std::map<rules::Buffer, std::string>>> inspected;
  std::vector<rules::DcerpcInfo> dcerpc;  // per inspection (all zero when it had none)
  std::vector<rules::Krb5Info> krb5;      // per inspection (msg_type 0 when it had none)
  // Per inspection: the instances of each multi-buffer it gave.
  std::vector<std::map<rules::Buffer, std::vector<std::string>>> items;
  std::vector<uint64_t> context;  // per inspection: Buffers::context_mask()

 private:
  char buf_[16384];
  JsonWriter writer_{buf_, sizeof buf_};
  TextBuilder message_;
  std::string type_;
  Direction dir_ = Direction::kToServer;
};

}  // namespace vigil::proto::testing
