#include "dataplane/detect/inspector.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "dataplane/export/event_record.h"
#include "dataplane/proto/bytes.h"
#include "dataplane/proto/event.h"
#include "dataplane/proto/krb5.h"
#include "rules/lang/classification.h"
#include "rules/lang/loader.h"
#include "rules/lang/text.h"

namespace vigil::dp {

DetectLoad LoadDetector(const DetectConfig& config) {
  DetectLoad out;
  rules::Vars vars = rules::DefaultVars();
  if (!config.vars.empty() && !rules::LoadVarsYaml(config.vars, &vars, &out.error)) {
    out.error = "detect.vars: " + out.error;
    return out;
  }
  rules::Classification classification;
  const rules::Classification* cls = nullptr;
  if (!config.classification.empty()) {
    std::vector<std::string> bad_lines;
    std::string err;
    if (!rules::Classification::Load(config.classification, &classification, &bad_lines, &err)) {
      out.error = "detect.classification: " + err;
      return out;
    }
    // Bad lines are skipped, as Suricata does; the rules naming them keep the default priority.
    cls = &classification;
  }
  rules::LoadResult loaded = rules::LoadRules(config.rules, vars, cls);
  if (!config.inline_rules.empty()) {
    // Padded with the lines before it, so that rejections name the line of the document the
    // rules were written in (a pushed configuration's detect.inline block).
    const std::string text =
        std::string(static_cast<size_t>(std::max(0, config.inline_line - 1)), '\n') +
        config.inline_rules;
    rules::LoadRulesText(text, config.inline_file.empty() ? "detect.inline" : config.inline_file,
                         vars, cls, &loaded);
  }
  out.summary = rules::Summary(loaded);
  out.rejections = loaded.rejections;
  if (!loaded.errors.empty()) {
    out.error = "detect.rules: " + loaded.errors.front();
    return out;
  }
  std::string err;
  out.detector =
      rules::Detector::Build(std::move(loaded.rules), &err, &out.stats, config.cache_dir);
  if (out.detector == nullptr) out.error = "detect: cannot build the rule databases: " + err;
  return out;
}

std::vector<const rules::Rejection*> RejectsForPush(const DetectLoad& load) {
  std::vector<const rules::Rejection*> out;
  for (const rules::Rejection& r : load.rejections) {
    if (r.kind == rules::RejectKind::kInvalid || r.kind == rules::RejectKind::kDuplicate) {
      out.push_back(&r);
    }
  }
  return out;
}

std::shared_ptr<const DetectSnapshot> MakeDetectSnapshot(
    std::shared_ptr<const rules::Detector> detector, size_t workers, std::string version,
    bool inline_actions, std::string* error) {
  static std::atomic<uint64_t> serials{0};
  auto s = std::make_shared<DetectSnapshot>();
  s->version = std::move(version);
  s->inline_actions = inline_actions;
  s->serial = serials.fetch_add(1, std::memory_order_relaxed) + 1;
  for (size_t i = 0; i < workers; ++i) {
    std::string e;
    std::unique_ptr<rules::Scratch> scratch = detector->NewScratch(&e);
    if (scratch == nullptr) {
      *error = "detect: cannot allocate Hyperscan scratch: " + e;
      return nullptr;
    }
    s->scratches.push_back(std::move(scratch));
  }
  s->detector = std::move(detector);
  return s;
}

rules::Protocol RuleProtocol(uint8_t app_proto) noexcept {
  switch (static_cast<proto::AppProto>(app_proto)) {
    case proto::AppProto::kSmb:
      return rules::Protocol::kSmb;
    case proto::AppProto::kDcerpc:
      return rules::Protocol::kDcerpc;
    case proto::AppProto::kKrb5:
      return rules::Protocol::kKrb5;
    case proto::AppProto::kDns:
      return rules::Protocol::kDns;
    case proto::AppProto::kHttp:
      return rules::Protocol::kHttp;
    case proto::AppProto::kTls:
      return rules::Protocol::kTls;
    default:
      return rules::Protocol::kIp;
  }
}

Inspector::Inspector(uint32_t flow_capacity, uint16_t worker, EventRing* ring)
    : worker_(worker), ring_(ring) {
  const size_t n = size_t{flow_capacity == 0 ? 1 : flow_capacity};
  bits_bytes_ = sizeof(rules::FlowBits) * n;
  gen_bytes_ = sizeof(uint32_t) * n;
  tails_bytes_ = sizeof(StreamTail) * 2 * n;
  // Anonymous pages are zero (every flow starts with no bits, generation 0, no stream tail) and
  // land on the node of the worker that first touches them.
  void* p = mmap(nullptr, bits_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  void* g = mmap(nullptr, gen_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* t = g == MAP_FAILED ? MAP_FAILED
                            : mmap(nullptr, tails_bytes_, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g == MAP_FAILED || t == MAP_FAILED) {
    munmap(p, bits_bytes_);
    if (g != MAP_FAILED) munmap(g, gen_bytes_);
    throw std::bad_alloc();
  }
  static_assert(std::is_trivially_copyable_v<rules::FlowBits>);
  bits_ = static_cast<rules::FlowBits*>(p);
  bits_gen_ = static_cast<uint32_t*>(g);
  tails_ = static_cast<StreamTail*>(t);
}

Inspector::Inspector(std::shared_ptr<const rules::Detector> detector,
                     std::unique_ptr<rules::Scratch> scratch, uint32_t flow_capacity,
                     uint16_t worker, EventRing* ring)
    : Inspector(flow_capacity, worker, ring) {
  auto s = std::make_shared<DetectSnapshot>();
  s->detector = std::move(detector);
  s->scratches.resize(size_t{worker} + 1);
  s->scratches[worker] = std::move(scratch);
  owned_ = std::move(s);
  Use(owned_.get());
}

Inspector::~Inspector() {
  if (bits_ != nullptr) munmap(bits_, bits_bytes_);
  if (bits_gen_ != nullptr) munmap(bits_gen_, gen_bytes_);
  if (tails_ != nullptr) munmap(tails_, tails_bytes_);
}

void Inspector::Use(const DetectSnapshot* snapshot) noexcept {
  snapshot_ = snapshot;
  serial_ = snapshot != nullptr ? snapshot->serial : 0;
  detector_ = nullptr;
  scratch_ = nullptr;
  if (snapshot != nullptr && snapshot->detector != nullptr &&
      worker_ < snapshot->scratches.size() && snapshot->scratches[worker_] != nullptr) {
    detector_ = snapshot->detector.get();
    scratch_ = snapshot->scratches[worker_].get();
    inline_actions_ = snapshot->inline_actions;
  }
  // Flowbit numbers belong to a rule set: bits set under the previous one are dropped.
  if (++gen_ == 0) gen_ = 1;  // after 2^32 switches; 0 is reserved for never-used entries
  ++switches_;
}

void Inspector::BeginPacket(Flow& flow, uint32_t flow_index, FlowDir dir, const PacketMeta& meta,
                            std::span<const uint8_t> frame, uint64_t now_ns) noexcept {
  verdict_ = RuleVerdict::kPass;
  ctx_.flow = &flow;
  ctx_.flow_index = flow_index;
  ctx_.dir = dir;
  ctx_.meta = &meta;
  ctx_.frame = frame;
  ctx_.now_ns = now_ns;
  if (detector_ != nullptr && bits_gen_[flow_index] != gen_) ResetFlow(flow_index);
}

void Inspector::FillMeta(FlowDir dir) noexcept {
  const PacketMeta& meta = *ctx_.meta;
  const Flow& flow = *ctx_.flow;
  rules::PacketMeta& p = rule_meta_;
  const bool tcp = meta.ip_proto == 6;
  p.transport = tcp ? rules::Protocol::kTcp : rules::Protocol::kUdp;
  p.app = RuleProtocol(flow.app_proto);
  p.ipv6 = meta.ip_version == 6;
  // Oriented as `dir` travels: a message going the other way than the packet that completed it
  // (not seen in practice) has the packet's ends swapped.
  const bool swap = dir != ctx_.dir;
  const uint8_t* src = swap ? meta.dst_addr : meta.src_addr;
  const uint8_t* dst = swap ? meta.src_addr : meta.dst_addr;
  if (p.ipv6) {
    std::memcpy(p.src.data(), src, 16);
    std::memcpy(p.dst.data(), dst, 16);
  } else {
    std::memcpy(p.src.data(), src + 12, 4);  // the decoder stores IPv4 mapped
    std::memcpy(p.dst.data(), dst + 12, 4);
  }
  p.src_port = swap ? meta.dst_port : meta.src_port;
  p.dst_port = swap ? meta.src_port : meta.dst_port;
  p.to_server = dir == kToServer;
  // TCP: past the handshake (or picked up midstream with both sides seen); UDP: both sides seen.
  p.established =
      flow.state != FlowState::kNew &&
      !(tcp && (flow.tcp_state == TcpState::kSynSent || flow.tcp_state == TcpState::kSynRecv));
  p.payload_size = meta.payload_len;
  p.ts_ns = static_cast<int64_t>(ctx_.now_ns);
}

uint32_t Inspector::Run(FlowDir dir, const rules::Buffers& buffers) noexcept {
  FillMeta(dir);
  const size_t n = detector_->Inspect(rule_meta_, buffers, &bits_[ctx_.flow_index], *scratch_,
                                      std::span<uint32_t>(alerts_));
  // Inline actions: the strongest action among the rules that alerted (reject > drop), over
  // the packet and every message it completed.
  if (inline_actions_) {
    const RuleVerdict before = verdict_;
    for (size_t i = 0; i < n; ++i) {
      const rules::Action a = detector_->rule(alerts_[i]).action;
      if (a == rules::Action::kReject) {
        verdict_ = RuleVerdict::kReject;
      } else if (a == rules::Action::kDrop && verdict_ == RuleVerdict::kPass) {
        verdict_ = RuleVerdict::kDrop;
      }
    }
    if (before == RuleVerdict::kPass && verdict_ != RuleVerdict::kPass) ++counters_.drops;
    if (before != RuleVerdict::kReject && verdict_ == RuleVerdict::kReject) ++counters_.rejects;
  }
  for (size_t i = 0; i < n; ++i) {
    const rules::Rule& rule = detector_->rule(alerts_[i]);
    // alert.action: "blocked" for a drop or reject rule that acted, "allowed" for the others
    // (alert and pass rules, and every rule in IDS mode), as Suricata reports it.
    const bool acted = inline_actions_ && (rule.action == rules::Action::kDrop ||
                                           rule.action == rules::Action::kReject);
    Emit(*ctx_.flow, dir, *ctx_.meta, rule, acted, ctx_.now_ns,
         buffers.Has(rules::Buffer::kPacket) ? nullptr : &buffers);
  }
  if (n > 0) ctx_.flow->alerted = 1;
  return static_cast<uint32_t>(n);
}

uint32_t Inspector::InspectPayload() noexcept {
  if (detector_ == nullptr || ctx_.flow == nullptr) return 0;
  const PacketMeta& meta = *ctx_.meta;
  if (meta.payload_len == 0 || meta.payload_offset == 0 ||
      size_t{meta.payload_offset} + meta.payload_len > ctx_.frame.size()) {
    return 0;
  }
  const std::span<const uint8_t> payload =
      ctx_.frame.subspan(meta.payload_offset, meta.payload_len);
  buffers_.Clear();
  buffers_.Set(rules::Buffer::kPacket, payload);
  ++counters_.inspected;
  if (meta.ip_proto != 6) return Run(ctx_.dir, buffers_);
  // TCP: the payload continues its direction's stream when it starts at the sequence number the
  // last one ended at; the bytes kept from before are then its stream prefix.
  StreamTail& t = tails_[size_t{ctx_.flow_index} * 2 + (ctx_.dir == kToServer ? 0 : 1)];
  const uint32_t seq = meta.tcp_seq + ((meta.tcp_flags & 0x02) != 0 ? 1 : 0);  // data after a SYN
  const bool in_order = t.valid != 0 && seq == t.next_seq;
  if (in_order && t.len > 0) {
    buffers_.SetStreamPrefix(std::span<const uint8_t>(t.bytes, t.len));
    ++counters_.stream_continued;
  }
  const uint32_t n = Run(ctx_.dir, buffers_);
  // Keep the stream's last bytes: after an in-order payload, the first one, or one past a gap
  // (lost or not yet seen data: the stream goes on from there). A retransmission or an overlap
  // (it starts before next_seq) leaves the tail as it is.
  if (t.valid == 0 || in_order || static_cast<int32_t>(seq - t.next_seq) > 0) {
    const size_t len = payload.size();
    if (len >= kTailBytes) {
      std::memcpy(t.bytes, payload.data() + len - kTailBytes, kTailBytes);
      t.len = kTailBytes;
    } else {
      const size_t keep = in_order ? std::min<size_t>(t.len, kTailBytes - len) : 0;
      std::memmove(t.bytes, t.bytes + t.len - keep, keep);
      std::memcpy(t.bytes + keep, payload.data(), len);
      t.len = static_cast<uint8_t>(keep + len);
    }
    t.next_seq = seq + static_cast<uint32_t>(len);
    t.valid = 1;
  }
  return n;
}

void Inspector::OnTransaction(const Flow& flow, FlowDir dir,
                              const rules::Buffers& buffers) noexcept {
  // Only messages of the packet being processed: a flow ended by a timeout or an eviction while
  // another packet is processed has no packet to act on.
  if (detector_ == nullptr || ctx_.flow != &flow || buffers.mask() == 0) {
    ++counters_.transactions_skipped;
    return;
  }
  ++counters_.transactions;
  Run(dir, buffers);
}

uint32_t Inspector::OnPacket(Flow& flow, uint32_t flow_index, FlowDir dir, const PacketMeta& meta,
                             std::span<const uint8_t> frame, uint64_t now_ns) noexcept {
  BeginPacket(flow, flow_index, dir, meta, frame, now_ns);
  const uint32_t n = InspectPayload();
  EndPacket();
  return n;
}

namespace {

// The app-layer metadata of the message an alert was raised on, in the shape of the protocol's
// own EVE event (Suricata adds the same to its alerts). Long values are cut to keep the record
// small; a member that does not fit is left out and the record marked truncated.
void WriteMessageMetadata(proto::JsonWriter& w, const rules::Buffers& b) noexcept {
  using rules::Buffer;
  constexpr size_t kMaxValue = 512;
  auto get = [&](Buffer x) {
    const std::span<const uint8_t> v = b.Get(x);
    return v.first(v.size() < kMaxValue ? v.size() : kMaxValue);
  };
  auto put = [&](std::string_view key, Buffer x) {
    if (b.Has(x)) w.Bytes(key, get(x));
  };
  if (b.Has(Buffer::kHttpMethod) || b.Has(Buffer::kHttpStatCode)) {
    w.ObjectBegin("http");
    put("hostname", Buffer::kHttpHost);
    put("url", Buffer::kHttpRawUri);
    put("http_user_agent", Buffer::kHttpUserAgent);
    put("http_content_type", Buffer::kHttpContentType);
    put("http_method", Buffer::kHttpMethod);
    put("protocol", Buffer::kHttpProtocol);
    if (b.Has(Buffer::kHttpStatCode)) {
      const std::span<const uint8_t> code = b.Get(Buffer::kHttpStatCode);
      uint64_t status = 0;
      if (rules::ParseUint({reinterpret_cast<const char*>(code.data()), code.size()}, UINT32_MAX,
                           &status)) {
        w.Uint("status", status);
      }
    }
    w.ObjectEnd();
  }
  if (b.Has(Buffer::kDnsQuery)) {
    w.ObjectBegin("dns");
    w.ArrayBegin("query");
    w.ObjectBegin("");
    w.Str("type", "query");
    w.Bytes("rrname", get(Buffer::kDnsQuery));
    w.ObjectEnd();
    w.ArrayEnd();
    w.ObjectEnd();
  }
  if (b.Has(Buffer::kTlsSni) || b.Has(Buffer::kJa3Hash) || b.Has(Buffer::kTlsCertSubject) ||
      b.Has(Buffer::kJa3sHash)) {
    w.ObjectBegin("tls");
    put("sni", Buffer::kTlsSni);
    put("subject", Buffer::kTlsCertSubject);
    put("issuerdn", Buffer::kTlsCertIssuer);
    put("serial", Buffer::kTlsCertSerial);
    put("fingerprint", Buffer::kTlsCertFingerprint);
    if (b.Has(Buffer::kJa3Hash)) {
      w.ObjectBegin("ja3");
      put("hash", Buffer::kJa3Hash);
      w.ObjectEnd();
    }
    if (b.Has(Buffer::kJa3sHash)) {
      w.ObjectBegin("ja3s");
      put("hash", Buffer::kJa3sHash);
      w.ObjectEnd();
    }
    w.ObjectEnd();
  }
  if (b.Has(Buffer::kSmbShare) || b.Has(Buffer::kSmbNamedPipe)) {
    w.ObjectBegin("smb");
    put("share", Buffer::kSmbShare);
    put("named_pipe", Buffer::kSmbNamedPipe);
    w.ObjectEnd();
  }
  if (b.Has(Buffer::kFileData) && b.Has(Buffer::kFileName)) {
    w.ArrayBegin("files");
    w.ObjectBegin("");
    put("filename", Buffer::kFileName);
    w.ObjectEnd();
    w.ArrayEnd();
  }
  if (const rules::DcerpcInfo* d = b.dcerpc()) {
    w.ObjectBegin("dcerpc");
    w.Str("request", "REQUEST");
    w.ObjectBegin("req");
    w.Uint("opnum", d->opnum);
    w.ObjectEnd();
    if (d->has_iface) {
      char uuid[37];
      proto::FormatGuidLe(d->uuid.data(), uuid);
      w.ArrayBegin("interfaces");
      w.ObjectBegin("");
      w.Str("uuid", std::string_view(uuid, 36));
      w.Uint("version", d->version);
      w.ObjectEnd();
      w.ArrayEnd();
    }
    w.ObjectEnd();
  }
  if (const rules::Krb5Info* k = b.krb5()) {
    w.ObjectBegin("krb5");
    if (const char* type = proto::Krb5MsgTypeName(k->msg_type)) w.Str("msg_type", type);
    put("cname", Buffer::kKrb5Cname);
    put("sname", Buffer::kKrb5Sname);
    if (k->error_code != -1) {
      if (const char* e = proto::Krb5ErrorName(k->error_code)) {
        w.Str("error_code", e);  // as the krb5 event spells it
      } else {
        w.Int("error_code", k->error_code);
      }
    }
    if (k->ticket_etype != -1) {
      if (const char* etype = proto::Krb5EtypeName(k->ticket_etype)) {
        w.Str("ticket_encryption", etype);
      }
      w.Bool("ticket_weak_encryption", proto::Krb5EtypeIsWeak(k->ticket_etype));
    }
    w.ObjectEnd();
  }
}

}  // namespace

void Inspector::Emit(const Flow& flow, FlowDir dir, const PacketMeta& meta, const rules::Rule& rule,
                     bool enforced, uint64_t now_ns, const rules::Buffers* message) noexcept {
  ++counters_.alerts;
  if (ring_ == nullptr) {
    ++counters_.alerts_lost;
    return;
  }
  writer_.Reset();
  writer_.ObjectBegin("alert");
  writer_.Str("action", enforced ? "blocked" : "allowed");
  writer_.Uint("gid", rule.gid);
  writer_.Uint("signature_id", rule.sid);
  writer_.Uint("rev", rule.rev);
  writer_.Str("signature", rule.msg);
  writer_.Str("category", rule.category);
  writer_.Uint("severity", static_cast<uint64_t>(rule.priority < 0 ? 0 : rule.priority));
  writer_.ObjectEnd();
  if (message != nullptr) WriteMessageMetadata(writer_, *message);
  message_.Clear();
  message_.Append("ALERT [")
      .AppendUint(rule.gid)
      .Append(':')
      .AppendUint(rule.sid)
      .Append(':')
      .AppendUint(rule.rev)
      .Append("] ")
      .Append(rule.msg);
  if (!rule.classtype.empty()) message_.Append(" (").Append(rule.classtype).Append(')');

  static constexpr std::string_view kType = "alert";
  const std::string_view body = writer_.view();
  const std::string_view msg = message_.view();
  const auto size =
      static_cast<uint32_t>(sizeof(AppEventHeader) + kType.size() + body.size() + msg.size());
  uint8_t* out = ring_->Reserve(size);
  if (out == nullptr) {
    ++counters_.alerts_lost;
    return;
  }
  // Oriented as the packet travels (Suricata's alert src/dest), not client → server.
  AppEventHeader h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.src_addr, meta.src_addr, 16);
  std::memcpy(h.dst_addr, meta.dst_addr, 16);
  h.src_port = meta.src_port;
  h.dst_port = meta.dst_port;
  h.ts_ns = now_ns;
  h.flow_id = flow.flow_id;
  h.vlan[0] = static_cast<uint16_t>(flow.key.vlan_proto & 0xfff);
  h.vlan[1] = static_cast<uint16_t>((flow.key.vlan_proto >> 12) & 0xfff);
  h.vlan_count = flow.vlan_count;
  h.proto = meta.ip_proto;
  h.ip_version = meta.ip_version;
  h.app_proto = flow.app_proto;
  h.direction = static_cast<uint8_t>(dir);  // FlowDir and proto::Direction agree: 0 to server
  h.flags = writer_.truncated() || message_.truncated() ? kAppEventTruncated : 0;
  h.worker = worker_;
  h.type_len = static_cast<uint16_t>(kType.size());
  h.message_len = static_cast<uint16_t>(msg.size());
  h.body_len = static_cast<uint32_t>(body.size());
  h.pcap_cnt = pcap_cnt_;
  std::memcpy(out, &h, sizeof h);
  uint8_t* q = out + sizeof h;
  std::memcpy(q, kType.data(), kType.size());
  q += kType.size();
  std::memcpy(q, body.data(), body.size());
  q += body.size();
  if (!msg.empty()) std::memcpy(q, msg.data(), msg.size());
  ring_->Commit(kEventApp, size);
}

}  // namespace vigil::dp
