#include "dataplane/export/eve_writer.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include "dataplane/proto/event.h"
#include "dataplane/proto/json_writer.h"

namespace vigil::dp {
namespace {

void AppendU64(std::string* out, uint64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof(buf), "%" PRIu64, v);
  out->append(buf, static_cast<size_t>(n));
}

void AppendFlagsHex(std::string* out, uint8_t flags) {
  char buf[4];
  std::snprintf(buf, sizeof(buf), "%02x", flags);
  out->append(buf, 2);
}

void AppendTcpFlagBools(std::string* out, uint8_t flags) {
  static constexpr struct {
    uint8_t bit;
    const char* name;
  } kNames[] = {{kTcpFin, "fin"}, {kTcpSyn, "syn"}, {kTcpRst, "rst"}, {kTcpPsh, "psh"},
                {kTcpAck, "ack"}, {kTcpUrg, "urg"}, {kTcpEce, "ecn"}, {kTcpCwr, "cwr"}};
  for (const auto& n : kNames) {
    if (flags & n.bit) {
      out->append(",\"");
      out->append(n.name);
      out->append("\":true");
    }
  }
}

}  // namespace

void AppendJsonString(std::string* out, const std::string& s) {
  out->push_back('"');
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

std::string FormatEveTime(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000ull);
  const unsigned usec = static_cast<unsigned>((ns % 1000000000ull) / 1000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06u+0000", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, usec);
  return buf;
}

std::string FormatAddr(const uint8_t addr[16], uint8_t ip_version) {
  char buf[INET6_ADDRSTRLEN];
  if (ip_version == 4) {
    inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  }
  return buf;
}

const char* ProtoName(uint8_t proto) {
  switch (proto) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 47:
      return "GRE";
    case 50:
      return "ESP";
    case 51:
      return "AH";
    case 58:
      return "IPv6-ICMP";
    case 132:
      return "SCTP";
    default:
      return nullptr;
  }
}

void AppendFlowEve(const FlowRecord& r, const std::string& host, std::string* out) {
  const std::string src = FormatAddr(r.src_addr, r.ip_version);
  const std::string dst = FormatAddr(r.dst_addr, r.ip_version);
  const char* pname = ProtoName(r.proto);
  const std::string proto = pname != nullptr ? pname : std::to_string(r.proto);
  const bool has_ports = r.proto == 6 || r.proto == 17 || r.proto == 132;
  const std::string end = FormatEveTime(r.end_ns);

  out->append("{\"timestamp\":\"").append(end).append("\",\"flow_id\":");
  AppendU64(out, r.flow_id);
  out->append(",\"event_type\":\"flow\",\"host\":");
  AppendJsonString(out, host);
  out->append(",\"src_ip\":\"").append(src).append("\"");
  if (has_ports) {
    out->append(",\"src_port\":");
    AppendU64(out, r.src_port);
  }
  out->append(",\"dest_ip\":\"").append(dst).append("\"");
  if (has_ports) {
    out->append(",\"dest_port\":");
    AppendU64(out, r.dst_port);
  }
  out->append(",\"proto\":\"").append(proto).append("\"");
  if (r.app_proto != 0) {
    out->append(",\"app_proto\":\"")
        .append(proto::AppProtoName(static_cast<proto::AppProto>(r.app_proto)))
        .append("\"");
  }
  if (r.vlan_count > 0) {
    out->append(",\"vlan\":[");
    AppendU64(out, r.vlan[0]);
    if (r.vlan_count > 1) {
      out->push_back(',');
      AppendU64(out, r.vlan[1]);
    }
    out->push_back(']');
  }
  out->append(",\"flow\":{\"pkts_toserver\":");
  AppendU64(out, r.pkts_toserver);
  out->append(",\"pkts_toclient\":");
  AppendU64(out, r.pkts_toclient);
  out->append(",\"bytes_toserver\":");
  AppendU64(out, r.bytes_toserver);
  out->append(",\"bytes_toclient\":");
  AppendU64(out, r.bytes_toclient);
  out->append(",\"start\":\"").append(FormatEveTime(r.start_ns));
  out->append("\",\"end\":\"").append(end);
  out->append("\",\"age\":");
  AppendU64(out, r.end_ns > r.start_ns ? (r.end_ns - r.start_ns) / 1000000000ull : 0);
  out->append(",\"state\":\"").append(FlowStateName(r.state));
  out->append("\",\"reason\":\"").append(FlowEndReasonName(r.reason));
  out->append(r.alerted != 0 ? "\",\"alerted\":true" : "\",\"alerted\":false");
  if (r.action == static_cast<uint8_t>(FlowAction::kPass)) out->append(",\"bypassed\":true");
  if (r.action == static_cast<uint8_t>(FlowAction::kDrop)) out->append(",\"action\":\"drop\"");
  out->push_back('}');
  if (r.proto == 6) {
    const uint8_t all = r.tcp_flags_ts | r.tcp_flags_tc;
    out->append(",\"tcp\":{\"tcp_flags\":\"");
    AppendFlagsHex(out, all);
    out->append("\",\"tcp_flags_ts\":\"");
    AppendFlagsHex(out, r.tcp_flags_ts);
    out->append("\",\"tcp_flags_tc\":\"");
    AppendFlagsHex(out, r.tcp_flags_tc);
    out->push_back('"');
    AppendTcpFlagBools(out, all);
    out->append(",\"state\":\"").append(TcpStateName(r.tcp_state)).append("\"}");
  }
  // The one-line human summary that search and models match as text.
  out->append(",\"message\":\"flow ").append(proto).push_back(' ');
  out->append(src);
  if (has_ports) out->append(":").append(std::to_string(r.src_port));
  out->append(" -> ").append(dst);
  if (has_ports) out->append(":").append(std::to_string(r.dst_port));
  out->append(" ").append(FlowStateName(r.state)).append(" (");
  out->append(FlowEndReasonName(r.reason)).append(") ");
  AppendU64(out, r.pkts_toserver + r.pkts_toclient);
  out->append(" pkts ");
  AppendU64(out, r.bytes_toserver + r.bytes_toclient);
  out->append(" bytes\"}");
}

EveWriter::~EveWriter() { Close(); }

std::string EveWriter::Open(const std::string& path, const std::string& host) {
  Close();
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr)
    return "outputs.eve.path: cannot open " + path + ": " + std::strerror(errno);
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  path_ = path;
  host_ = host;
  return "";
}

void EveWriter::WriteLine() {
  if (hook_) hook_(line_);
  if (file_ == nullptr) return;
  line_.push_back('\n');
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
    ++write_errors_;
  } else {
    ++records_;
  }
}

void EveWriter::Write(const FlowRecord& rec) {
  if (file_ == nullptr && !hook_) return;
  line_.clear();
  AppendFlowEve(rec, host_, &line_);
  WriteLine();
}

void EveWriter::WriteApp(std::span<const uint8_t> record) {
  if (file_ == nullptr && !hook_) return;
  line_.clear();
  if (!AppendAppEve(record, host_, &line_)) {
    ++bad_records_;
    return;
  }
  WriteLine();
}

bool AppendAppEve(std::span<const uint8_t> record, const std::string& host, std::string* out) {
  AppEventHeader h;
  if (record.size() < sizeof h) return false;  // NOLINT: h is filled by the memcpy below
  std::memcpy(&h, record.data(), sizeof h);
  if (sizeof h + size_t{h.type_len} + h.body_len + h.message_len != record.size()) return false;
  const char* p = reinterpret_cast<const char*>(record.data()) + sizeof h;
  const std::string_view type(p, h.type_len);
  const std::string_view body(p + h.type_len, h.body_len);
  const std::string_view message(p + h.type_len + h.body_len, h.message_len);
  const char* pname = ProtoName(h.proto);
  const bool has_ports = h.proto == 6 || h.proto == 17;
  // Suricata writes DNS messages from the sender's side (a response's source is the server); every
  // other protocol's events stay client → server.
  if (type == "dns" && h.direction == static_cast<uint8_t>(proto::Direction::kToClient)) {
    std::swap(h.src_addr, h.dst_addr);
    std::swap(h.src_port, h.dst_port);
  }
  out->append("{\"timestamp\":\"").append(FormatEveTime(h.ts_ns)).append("\",\"flow_id\":");
  AppendU64(out, h.flow_id);
  if (h.pcap_cnt != 0) {
    out->append(",\"pcap_cnt\":");
    AppendU64(out, h.pcap_cnt);
  }
  out->append(",\"event_type\":\"").append(type).append("\",\"host\":");
  AppendJsonString(out, host);
  out->append(",\"src_ip\":\"").append(FormatAddr(h.src_addr, h.ip_version)).append("\"");
  if (has_ports) {
    out->append(",\"src_port\":");
    AppendU64(out, h.src_port);
  }
  out->append(",\"dest_ip\":\"").append(FormatAddr(h.dst_addr, h.ip_version)).append("\"");
  if (has_ports) {
    out->append(",\"dest_port\":");
    AppendU64(out, h.dst_port);
  }
  out->append(",\"proto\":\"")
      .append(pname != nullptr ? pname : std::to_string(h.proto))
      .append("\"");
  if (h.app_proto != 0) {
    out->append(",\"app_proto\":\"")
        .append(proto::AppProtoName(static_cast<proto::AppProto>(h.app_proto)))
        .append("\"");
  }
  if (h.vlan_count > 0) {
    out->append(",\"vlan\":[");
    AppendU64(out, h.vlan[0]);
    if (h.vlan_count > 1) {
      out->push_back(',');
      AppendU64(out, h.vlan[1]);
    }
    out->push_back(']');
  }
  out->append(",\"direction\":\"")
      .append(proto::DirectionName(static_cast<proto::Direction>(h.direction & 1)))
      .append("\"");
  if (!body.empty()) out->push_back(',');
  out->append(body);
  if ((h.flags & kAppEventTruncated) != 0) out->append(",\"truncated\":true");
  // Through the parsers' escaping: messages carry wire strings, which may not be UTF-8.
  char buf[8 * proto::TextBuilder::kCapacity];
  proto::JsonWriter w(buf, sizeof buf);
  w.Str("message", message);
  out->push_back(',');
  out->append(w.view());
  out->push_back('}');
  return true;
}

void EveWriter::Flush() {
  if (file_ != nullptr && std::fflush(file_) != 0) ++write_errors_;
}

void EveWriter::Close() {
  if (file_ == nullptr) return;
  Flush();
  std::fclose(file_);
  file_ = nullptr;
}

}  // namespace vigil::dp
