// Unit tests for the query language: tokeniser, parser (every construct and error with its
// column), evaluation against real vigil events (taken from the dataplane's output for the 401trg
// and suricata-verify captures; the `.job` and NTLMSSP events are shaped like the real ones),
// canonical form, and soundness of the FTS5 and fragment prefilters (checked with an in-memory
// SQLite FTS5 table). Build: ... query*.cc tests/unit/control/query_test.cc -lsqlite3 -lgtest
#include "control/query/query.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace vigil::ctl::query {
namespace {

using Json = nlohmann::json;

// 401trg 20171220_smb_at_schedule.pcap: the AT service job over \PIPE\atsvc.
constexpr const char* kCreateAtsvc =
    R"ev({"timestamp":"2017-10-20T18:43:22.992523+0000","flow_id":1099511627777,"pcap_cnt":2,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49266,"dest_ip":"192.168.10.30","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_client","smb":{"id":1,"dialect":"unknown","command":"SMB2_COMMAND_CREATE","status":"STATUS_SUCCESS","status_code":"0x0","session_id":4398046511201,"tree_id":1,"filename":"atsvc","disposition":"FILE_OPEN","access":"normal","created":0,"accessed":0,"modified":0,"changed":0,"size":0,"fuid":"0000004d-0000-0000-0005-0000ffffffff"},"message":"SMB2 CREATE success atsvc"})ev";
constexpr const char* kBindAtsvc =
    R"ev({"timestamp":"2017-10-20T18:43:22.993206+0000","flow_id":1099511627777,"pcap_cnt":8,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49266,"dest_ip":"192.168.10.30","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_client","smb":{"id":2,"dialect":"unknown","command":"SMB2_COMMAND_WRITE","status":"STATUS_SUCCESS","status_code":"0x0","session_id":4398046511201,"tree_id":1,"dcerpc":{"request":"BIND","response":"BINDACK","interfaces":[{"uuid":"1ff70682-0a51-30e8-076d-740be8cee98b","version":"1.0","ack_result":2,"ack_reason":0,"service":"atsvc"},{"uuid":"1ff70682-0a51-30e8-076d-740be8cee98b","version":"1.0","ack_result":0,"ack_reason":0,"service":"atsvc"},{"uuid":"1ff70682-0a51-30e8-076d-740be8cee98b","version":"1.0","ack_result":3,"ack_reason":0,"service":"atsvc"}],"call_id":2,"rpc_version":"5.0","secondary_address":"\\PIPE\\atsvc"}},"message":"SMB2 WRITE success atsvc DCERPC BIND atsvc v1.0 provider_rejection, atsvc v1.0 accepted, atsvc v1.0 negotiate_ack"})ev";
constexpr const char* kJobAdd =
    R"ev({"timestamp":"2017-10-20T18:43:23.013830+0000","flow_id":1099511627777,"pcap_cnt":11,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49266,"dest_ip":"192.168.10.30","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_client","smb":{"id":3,"dialect":"unknown","command":"SMB2_COMMAND_IOCTL","status":"STATUS_SUCCESS","status_code":"0x0","session_id":4398046511201,"tree_id":1,"dcerpc":{"request":"REQUEST","response":"RESPONSE","opnum":0,"req":{"opnum":0,"frag_cnt":1,"stub_data_size":136},"interfaces":[{"uuid":"1ff70682-0a51-30e8-076d-740be8cee98b","version":"1.0","ack_result":0,"ack_reason":0,"service":"atsvc","procedure":"NetrJobAdd"}],"res":{"frag_cnt":1,"stub_data_size":8},"call_id":2,"rpc_version":"5.0","interface":"atsvc","operation":"NetrJobAdd","context_id":1}},"message":"SMB2 IOCTL success atsvc DCERPC REQUEST atsvc NetrJobAdd opnum 0 ok"})ev";
constexpr const char* kFlow =
    R"ev({"timestamp":"2017-10-20T18:43:35.389541+0000","flow_id":1099511627777,"event_type":"flow","host":"vigil","src_ip":"192.168.10.31","src_port":49266,"dest_ip":"192.168.10.30","dest_port":445,"proto":"TCP","app_proto":"smb","flow":{"pkts_toserver":11,"pkts_toclient":9,"bytes_toserver":1749,"bytes_toclient":1523,"start":"2017-10-20T18:43:22.992213+0000","end":"2017-10-20T18:43:35.389541+0000","age":12,"state":"closed","reason":"shutdown","alerted":false},"tcp":{"tcp_flags":"1c","tcp_flags_ts":"1c","tcp_flags_tc":"18","rst":true,"psh":true,"ack":true,"state":"closed"},"message":"flow TCP 192.168.10.31:49266 -> 192.168.10.30:445 closed (shutdown) 20 pkts 3272 bytes"})ev";
// 401trg 20171220_smb_psexec_add_user.pcap.
constexpr const char* kPsexecWrite =
    R"ev({"timestamp":"2017-10-09T16:44:39.272566+0000","flow_id":1099511627782,"pcap_cnt":48,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49282,"dest_ip":"192.168.10.10","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_server","smb":{"id":6,"dialect":"2.10","command":"SMB2_COMMAND_WRITE","status":"STATUS_SUCCESS","status_code":"0x0","session_id":39582485708873,"tree_id":1,"filename":"PSEXESVC.exe","share":"\\\\dc1\\ADMIN$","fuid":"0000002d-0009-0000-0001-000000000009"},"message":"SMB2 WRITE success \\\\dc1\\ADMIN$ PSEXESVC.exe 145568 bytes"})ev";
constexpr const char* kSvcctlPipe =
    R"ev({"timestamp":"2017-10-09T16:45:00.281093+0000","flow_id":1099511627794,"pcap_cnt":151,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49285,"dest_ip":"192.168.10.10","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_client","smb":{"id":4,"dialect":"2.10","command":"SMB2_COMMAND_CREATE","status":"STATUS_SUCCESS","status_code":"0x0","session_id":39582485708869,"tree_id":1,"filename":"svcctl","disposition":"FILE_OPEN","access":"normal","created":0,"accessed":0,"modified":0,"changed":0,"size":0,"fuid":"0000002e-0009-0000-0001-000000000009"},"message":"SMB2 CREATE success \\\\dc1\\IPC$ svcctl (pipe)"})ev";
constexpr const char* kEpmapper =
    R"ev({"timestamp":"2017-10-09T16:44:39.286293+0000","flow_id":1099511627783,"pcap_cnt":54,"event_type":"dcerpc","host":"vigil","src_ip":"192.168.10.31","src_port":49283,"dest_ip":"192.168.10.10","dest_port":135,"proto":"TCP","app_proto":"dcerpc","direction":"to_server","dcerpc":{"request":"BIND","response":"BINDACK","interfaces":[{"uuid":"e1af8308-5d1f-11c9-91a4-08002b14a0fa","version":"3.0","ack_result":0,"ack_reason":0,"service":"epmapper"},{"uuid":"e1af8308-5d1f-11c9-91a4-08002b14a0fa","version":"3.0","ack_result":3,"ack_reason":3,"service":"epmapper"}],"call_id":2,"rpc_version":"5.0","secondary_address":"135"},"message":"DCERPC BIND epmapper v3.0 accepted, epmapper v3.0 negotiate_ack"})ev";
// 401trg 20171220_smb_net_user.pcap.
constexpr const char* kSamrBind =
    R"ev({"timestamp":"2017-10-09T15:21:18.112787+0000","flow_id":1099511627777,"pcap_cnt":20,"event_type":"smb","host":"vigil","src_ip":"192.168.10.31","src_port":49282,"dest_ip":"192.168.10.10","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_client","smb":{"id":6,"dialect":"2.10","command":"SMB2_COMMAND_WRITE","status":"STATUS_SUCCESS","status_code":"0x0","session_id":35184439197745,"tree_id":1,"dcerpc":{"request":"BIND","response":"BINDACK","interfaces":[{"uuid":"12345778-1234-abcd-ef00-0123456789ac","version":"1.0","ack_result":2,"ack_reason":0,"service":"samr"},{"uuid":"12345778-1234-abcd-ef00-0123456789ac","version":"1.0","ack_result":0,"ack_reason":0,"service":"samr"}],"call_id":2,"rpc_version":"5.0","secondary_address":"\\pipe\\lsass"}},"message":"SMB2 WRITE success \\\\DC1.contoso.local\\IPC$ samr DCERPC BIND samr v1.0 provider_rejection, samr v1.0 accepted"})ev";
// suricata-verify cond-log-dns-dig.
constexpr const char* kDnsQuery =
    R"ev({"timestamp":"2017-04-20T21:15:58.732253+0000","flow_id":1099511627777,"pcap_cnt":1,"event_type":"dns","host":"vigil","src_ip":"10.16.1.11","src_port":41805,"dest_ip":"10.16.1.1","dest_port":53,"proto":"UDP","app_proto":"dns","direction":"to_server","dns":{"version":3,"type":"request","tx_id":0,"id":36146,"flags":"120","rd":true,"opcode":0,"rcode":"NOERROR","queries":[{"rrname":"www.suricata-ids.org","rrtype":"A"}]},"message":"DNS QUERY A www.suricata-ids.org"})ev";
constexpr const char* kDnsResponse =
    R"ev({"timestamp":"2017-04-20T21:15:58.732859+0000","flow_id":1099511627777,"pcap_cnt":2,"event_type":"dns","host":"vigil","src_ip":"10.16.1.1","src_port":53,"dest_ip":"10.16.1.11","dest_port":41805,"proto":"UDP","app_proto":"dns","direction":"to_client","dns":{"version":3,"type":"response","tx_id":1,"id":36146,"flags":"81a0","qr":true,"rd":true,"ra":true,"opcode":0,"rcode":"NOERROR","queries":[{"rrname":"www.suricata-ids.org","rrtype":"A"}],"answers":[{"rrname":"www.suricata-ids.org","rrtype":"CNAME","ttl":3544,"rdata":"suricata-ids.org"},{"rrname":"suricata-ids.org","rrtype":"A","ttl":244,"rdata":"192.0.78.24"},{"rrname":"suricata-ids.org","rrtype":"A","ttl":244,"rdata":"192.0.78.25"}],"grouped":{"CNAME":["suricata-ids.org"],"A":["192.0.78.24","192.0.78.25"]}},"message":"DNS RESPONSE NOERROR A www.suricata-ids.org CNAME suricata-ids.org 192.0.78.24 192.0.78.25"})ev";
// Shaped like the scenario's reads of scheduled-task files from the C$ share, and like an SMB
// SESSION_SETUP with an NTLMSSP AUTHENTICATE (docs/events.md), over IPv6 for the CIDR tests.
constexpr const char* kJobRead =
    R"ev({"timestamp":"2017-12-20T09:00:01.123456+0000","flow_id":1099511627790,"pcap_cnt":40,"event_type":"smb","host":"vigil","src_ip":"10.0.0.9","src_port":49301,"dest_ip":"10.0.0.5","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_server","smb":{"id":7,"dialect":"2.10","command":"SMB2_COMMAND_READ","status":"STATUS_SUCCESS","status_code":"0x0","session_id":39582485708873,"tree_id":5,"filename":"Windows\\Tasks\\AV.job","share":"\\\\10.0.0.5\\C$","fuid":"00000031-0009-0000-0001-000000000009"},"message":"SMB2 READ success \\\\10.0.0.5\\C$ Windows\\Tasks\\AV.job 896 bytes"})ev";
constexpr const char* kNtlmAuth =
    R"ev({"timestamp":"2017-12-20T08:59:59.000100+0000","flow_id":1099511627791,"pcap_cnt":9,"event_type":"smb","host":"vigil","src_ip":"fd00::9","src_port":49300,"dest_ip":"fd00::5","dest_port":445,"proto":"TCP","app_proto":"smb","direction":"to_server","smb":{"id":2,"dialect":"2.10","command":"SMB2_COMMAND_SESSION_SETUP","status":"STATUS_SUCCESS","status_code":"0x0","session_id":39582485708873,"tree_id":0,"ntlmssp":{"domain":"CORP","user":"appadmin","host":"AVMGMT01","version":"6.1 build 7601 rev 15"}},"message":"SMB2 SESSION_SETUP success CORP\\appadmin from AVMGMT01"})ev";

std::vector<Json> AllEvents() {
  std::vector<Json> out;
  for (const char* s : {kCreateAtsvc, kBindAtsvc, kJobAdd, kFlow, kPsexecWrite, kSvcctlPipe,
                        kEpmapper, kSamrBind, kDnsQuery, kDnsResponse, kJobRead, kNtlmAuth}) {
    out.push_back(Json::parse(s));
  }
  return out;
}

Query MustParse(const std::string& text) {
  Error e;
  auto q = Query::Parse(text, &e);
  EXPECT_TRUE(q.has_value()) << text << ": " << e.message;
  if (!q) return *Query::Parse("__never__", nullptr);
  return *q;
}

bool M(const std::string& query, const char* event) {
  return MustParse(query).Matches(Json::parse(event));
}

// ---------------------------------------------------------------------------------------------
// Tokenize

TEST(Tokenize, SplitsOnListedPunctuationOnly) {
  EXPECT_EQ(
      Tokenize(R"(SMB2 READ \\10.0.0.5\C$ Windows\Tasks\AV.job)"),
      (std::vector<std::string>{"smb2", "read", "10.0.0.5", "c$", "windows", "tasks", "av.job"}));
  EXPECT_EQ(Tokenize("a/b,c;d:e=f(g)h[i]j{k}l\"m'n|o<p>q@r"),
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l",
                                      "m", "n", "o", "p", "q", "r"}));
  EXPECT_EQ(
      Tokenize("IPC$ PSEXESVC-VICTIM-PC-2412-stdin ntlm_auth x.y"),
      (std::vector<std::string>{"ipc$", "psexesvc-victim-pc-2412-stdin", "ntlm_auth", "x.y"}));
  EXPECT_EQ(Tokenize(" \t\r\n\x01 "), std::vector<std::string>{});
  EXPECT_EQ(Tokenize("a?b*c#d"), std::vector<std::string>{"a?b*c#d"});
  EXPECT_EQ(Tokenize("ÉCOLE"), std::vector<std::string>{"École"});  // ASCII lower-casing only
}

TEST(IndexText, MessageFirstThenEveryStringValue) {
  const std::string t = IndexText(Json::parse(kJobRead));
  EXPECT_EQ(t.rfind("smb2 read success 10.0.0.5 c$ windows tasks av.job 896 bytes ", 0), 0u) << t;
  EXPECT_NE(t.find(" smb2_command_read "), std::string::npos);
  EXPECT_EQ(t.find("  "), std::string::npos);
  // Numbers are not text.
  EXPECT_EQ(t.find("49301"), std::string::npos);
  // The message once, not twice.
  EXPECT_EQ(t.find("896", t.find("896") + 1), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Terms, phrases, wildcards

TEST(Terms, BareTermsAreCaseInsensitiveWholeTokens) {
  EXPECT_TRUE(M("atsvc", kCreateAtsvc));
  EXPECT_TRUE(M("ATSVC", kCreateAtsvc));
  EXPECT_TRUE(M("AtSvc", kBindAtsvc));
  EXPECT_FALSE(M("atsv", kCreateAtsvc));  // a token, not a substring
  EXPECT_FALSE(M("atsvcx", kCreateAtsvc));
  EXPECT_TRUE(M("IPC$", kSvcctlPipe));
  EXPECT_FALSE(M("IPC", kSvcctlPipe));
  EXPECT_TRUE(M("AV.job", kJobRead));
  EXPECT_TRUE(M("av.JOB", kJobRead));
  EXPECT_FALSE(M("AV", kJobRead));
  EXPECT_TRUE(M("NetrJobAdd", kJobAdd));  // a string value, not only the message
  EXPECT_TRUE(M("smb2_command_ioctl", kJobAdd));
  EXPECT_TRUE(M("appadmin", kNtlmAuth));
  EXPECT_FALSE(M("445", kJobRead));  // numbers are not text: use dest_port:445
}

TEST(Terms, TermWithSeparatorsIsAPhraseOfItsTokens) {
  EXPECT_TRUE(M(R"(Windows\Tasks\AV.job)", kJobRead));
  EXPECT_TRUE(M(R"(\\10.0.0.5\C$)", kJobRead));
  EXPECT_TRUE(M(R"(CORP\appadmin)", kNtlmAuth));
  EXPECT_FALSE(M(R"(Tasks\Windows)", kJobRead));
  EXPECT_TRUE(M(R"(Windows\Tasks\*.job)", kJobRead));
  EXPECT_FALSE(M(R"(Windows\*.job)", kJobRead));  // a wildcard stays within one token
}

TEST(Terms, Phrases) {
  EXPECT_TRUE(M(R"("IPC$ svcctl")", kSvcctlPipe));
  EXPECT_TRUE(M(R"q("ipc$ SVCCTL (pipe)")q", kSvcctlPipe));
  EXPECT_FALSE(M(R"("svcctl IPC$")", kSvcctlPipe));
  EXPECT_TRUE(M(R"("CREATE success")", kSvcctlPipe));
  EXPECT_FALSE(M(R"("CREATE   failure")", kSvcctlPipe));
  // Within one value: the end of the message and the next value are not consecutive.
  EXPECT_FALSE(M(R"("bytes 0000002d-0009-0000-0001-000000000009")", kPsexecWrite));
  // Quotes make wildcards literal.
  EXPECT_FALSE(M(R"("*.job")", kJobRead));
  EXPECT_TRUE(M(R"("C:\Windows\Tasks\AV.job")", kJobRead) == false);  // `c` is not a token there
  EXPECT_TRUE(M(R"("\\10.0.0.5\C$\Windows\Tasks\AV.job")", kJobRead));
  EXPECT_TRUE(M(R"("say \"hi\"")", R"({"message":"they say \"hi\" here"})"));
}

TEST(Wildcards, StarAndQuestionMark) {
  EXPECT_TRUE(M("*.JOB", kJobRead));
  EXPECT_TRUE(M("*.job", kJobRead));
  EXPECT_TRUE(M("AV.j?b", kJobRead));
  EXPECT_TRUE(M("AV.J*", kJobRead));
  EXPECT_TRUE(M("a*", kJobRead));
  EXPECT_FALSE(M("AV.j?", kJobRead));
  EXPECT_FALSE(M("*.exe", kJobRead));
  EXPECT_TRUE(M("*.exe", kPsexecWrite));
  EXPECT_TRUE(M("psexe*", kSvcctlPipe) == false);
  EXPECT_TRUE(M("psexesvc-*-stdin", R"({"message":"CREATE PSEXESVC-VICTIM-PC-2412-stdin"})"));
  EXPECT_TRUE(M("*", kJobRead));
  EXPECT_TRUE(M("**", kJobRead));
  EXPECT_TRUE(M("?", R"({"message":"a b"})"));
  EXPECT_FALSE(M("?", R"({"message":"ab cd"})"));
  EXPECT_TRUE(M("??", R"({"message":"ab"})"));
  EXPECT_TRUE(M("a**b", R"({"message":"ab"})"));
  EXPECT_TRUE(M("*a*b*c*", R"({"message":"xxaxxbxxcxx"})"));
  EXPECT_FALSE(M("*a*b*c*", R"({"message":"xxaxxcxxbxx"})"));
  EXPECT_TRUE(M("?cole", R"({"message":"école"})"));  // `?` is one UTF-8 character
  EXPECT_FALSE(M("??cole", R"({"message":"école"})"));
  EXPECT_TRUE(M("*?", R"({"message":"é"})"));
  EXPECT_FALSE(M("*??", R"({"message":"é"})"));
}

TEST(Wildcards, NoExponentialBacktracking) {
  const std::string value(20000, 'a');
  std::string pattern;
  for (int i = 0; i < 40; ++i) pattern += "a*";
  pattern += "b";
  const Json ev = {{"message", value}};
  auto q = MustParse("f:" + pattern);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.Matches(Json{{"f", value}}));
  EXPECT_FALSE(MustParse(pattern).Matches(ev));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 2000.0);
}

// ---------------------------------------------------------------------------------------------
// Protocol names

TEST(Protocols, NamesMatchEventTypeAndAppProto) {
  EXPECT_TRUE(M("SMB", kCreateAtsvc));
  EXPECT_TRUE(M("smb", kFlow));  // a flow whose app_proto is smb
  EXPECT_FALSE(M("SMB", kEpmapper));
  EXPECT_TRUE(M("DCERPC", kEpmapper));
  EXPECT_TRUE(M("dcerpc", kBindAtsvc));  // DCERPC over an SMB pipe, by its message
  EXPECT_TRUE(M("dns", kDnsQuery));
  EXPECT_FALSE(M("dns", kJobRead));
  EXPECT_TRUE(M("flow", kFlow));
  EXPECT_TRUE(M("NTLM", kNtlmAuth));  // has an ntlmssp object
  EXPECT_FALSE(M("ntlm", kJobRead));
  EXPECT_FALSE(M("ntlm*", kNtlmAuth));  // only the exact name is a protocol term
}

TEST(Protocols, IssueExamples) {
  auto job_and_smb = MustParse("*.JOB AND SMB");
  auto av_and_smb = MustParse("AV.job AND SMB");
  for (const Json& ev : AllEvents()) {
    const bool is_job = ev == Json::parse(kJobRead);
    EXPECT_EQ(job_and_smb.Matches(ev), is_job) << ev.dump();
    EXPECT_EQ(av_and_smb.Matches(ev), is_job) << ev.dump();
  }
  EXPECT_TRUE(M(R"(atsvc AND "IPC$")", kSvcctlPipe) == false);
  EXPECT_TRUE(M(R"(svcctl AND "IPC$")", kSvcctlPipe));
}

// ---------------------------------------------------------------------------------------------
// Fields

TEST(Fields, WholeValueWildcardsCaseInsensitive) {
  EXPECT_TRUE(M("smb.filename:*.job", kJobRead));
  EXPECT_TRUE(M("smb.filename:*.JOB", kJobRead));
  EXPECT_TRUE(M(R"(smb.filename:Windows\Tasks\AV.job)", kJobRead));
  EXPECT_TRUE(M(R"(smb.filename:windows\tasks\*)", kJobRead));
  EXPECT_FALSE(M("smb.filename:AV.job", kJobRead));  // the whole value
  EXPECT_FALSE(M("smb.filename:*.job", kPsexecWrite));
  EXPECT_TRUE(M("smb.filename:*.exe", kPsexecWrite));
  EXPECT_TRUE(M("event_type:smb", kJobRead));
  EXPECT_TRUE(M("event_type:SMB", kJobRead));
  EXPECT_FALSE(M("event_type:smb", kFlow));
  EXPECT_TRUE(M("app_proto:smb", kFlow));
  EXPECT_TRUE(M("SMB.FileName:*.job", kJobRead));  // field names are case-insensitive too
  EXPECT_FALSE(M("smb.nosuch:*", kJobRead));
  EXPECT_FALSE(M("smb:*.job", kJobRead));  // an object is no value
  EXPECT_TRUE(M(R"(smb.share:\\10.0.0.5\C$)", kJobRead));
  EXPECT_TRUE(M("smb.share:*C$", kJobRead));
  EXPECT_TRUE(M("src_ip:10.0.0.*", kJobRead));
  EXPECT_TRUE(M("timestamp:2017-12-20*", kJobRead));
}

TEST(Fields, ArraysMatchAnyElement) {
  EXPECT_TRUE(M("dcerpc.interfaces.service:epmapper", kEpmapper));
  EXPECT_TRUE(M("smb.dcerpc.interfaces.service:atsvc", kBindAtsvc));
  EXPECT_TRUE(M("smb.dcerpc.interfaces.ack_result:3", kBindAtsvc));
  EXPECT_FALSE(M("smb.dcerpc.interfaces.ack_result:4", kBindAtsvc));
  EXPECT_TRUE(M("dns.answers.rdata:192.0.78.25", kDnsResponse));
  EXPECT_TRUE(M("dns.answers.rrtype:cname", kDnsResponse));
  EXPECT_TRUE(M("dns.grouped.A:192.0.78.24", kDnsResponse));
  EXPECT_TRUE(M("dns.queries.rrname:*.suricata-ids.org", kDnsQuery));
  EXPECT_TRUE(M("dns.answers.ttl:[3000 TO *]", kDnsResponse));
  EXPECT_FALSE(M("dns.answers.ttl:[4000 TO *]", kDnsResponse));
  EXPECT_TRUE(M("f:b", R"({"f":[["a"],[["b"]]]})"));  // nested arrays
}

TEST(Fields, NumbersBooleansNull) {
  EXPECT_TRUE(M("dest_port:445", kJobRead));
  EXPECT_TRUE(M("dest_port:445.0", kJobRead));
  EXPECT_TRUE(M("dest_port:4.45e2", kJobRead));
  EXPECT_FALSE(M("dest_port:446", kJobRead));
  EXPECT_TRUE(M("dest_port:44*", kJobRead));  // wildcards on the decimal text
  EXPECT_TRUE(M(R"(dest_port:"445")", kJobRead));
  EXPECT_TRUE(M("flow_id:1099511627790", kJobRead));
  EXPECT_FALSE(M("flow_id:1099511627791", kJobRead));  // exact beyond 2^53
  EXPECT_TRUE(M("f:18446744073709551615", R"({"f":18446744073709551615})"));
  EXPECT_FALSE(M("f:18446744073709551614", R"({"f":18446744073709551615})"));
  EXPECT_TRUE(M("f:-3", R"({"f":-3})"));
  EXPECT_TRUE(M("f:1.5", R"({"f":1.5})"));
  EXPECT_TRUE(M("dns.rd:true", kDnsQuery));
  EXPECT_TRUE(M("dns.rd:TRUE", kDnsQuery));
  EXPECT_FALSE(M("dns.rd:false", kDnsQuery));
  EXPECT_TRUE(M("flow.alerted:false", kFlow));
  EXPECT_TRUE(M("f:null", R"({"f":null})"));
  EXPECT_FALSE(M("f:*", R"({"f":null})"));
}

TEST(Fields, Exists) {
  EXPECT_TRUE(M("smb.filename:*", kJobRead));
  EXPECT_FALSE(M("smb.filename:*", kBindAtsvc));
  EXPECT_TRUE(M("smb.dcerpc:*", kBindAtsvc));  // objects exist too
  EXPECT_TRUE(M("smb.ntlmssp.user:*", kNtlmAuth));
  EXPECT_TRUE(M("dns.answers:*", kDnsResponse));
  EXPECT_FALSE(M("dns.answers:*", kDnsQuery));
}

TEST(Fields, QuotedValueIsAPhraseInTheValue) {
  EXPECT_TRUE(M(R"(message:"IPC$ svcctl")", kSvcctlPipe));
  EXPECT_FALSE(M(R"(smb.filename:"IPC$ svcctl")", kSvcctlPipe));
  EXPECT_TRUE(M(R"(smb.filename:"tasks AV.job")", kJobRead));
  EXPECT_TRUE(M(R"(message:"CORP\appadmin from")", kNtlmAuth));
  EXPECT_FALSE(M(R"(message:"appadmin CORP")", kNtlmAuth));
}

TEST(Fields, Cidr) {
  EXPECT_TRUE(M("src_ip:10.0.0.0/8", kJobRead));
  EXPECT_TRUE(M("src_ip:10.0.0.9/32", kJobRead));
  EXPECT_TRUE(M("src_ip:10.0.0.9", kJobRead));
  EXPECT_FALSE(M("src_ip:10.0.0.8/32", kJobRead));
  EXPECT_TRUE(M("src_ip:10.0.0.8/29", kJobRead));
  EXPECT_FALSE(M("src_ip:10.0.0.0/29", kJobRead));
  EXPECT_TRUE(M("src_ip:0.0.0.0/0", kJobRead));
  EXPECT_FALSE(M("src_ip:0.0.0.0/0", kNtlmAuth));  // families do not mix
  EXPECT_FALSE(M("src_ip:192.168.0.0/16", kJobRead));
  EXPECT_TRUE(M("src_ip:192.168.0.0/16", kCreateAtsvc));
  EXPECT_TRUE(M("dns.answers.rdata:192.0.78.0/24", kDnsResponse));
  EXPECT_TRUE(M("src_ip:fd00::/8", kNtlmAuth));
  EXPECT_TRUE(M("src_ip:fd00::9", kNtlmAuth));
  EXPECT_TRUE(M("src_ip:FD00:0:0:0:0:0:0:9", kNtlmAuth));  // canonical forms compare as addresses
  EXPECT_FALSE(M("src_ip:fd00::/128", kNtlmAuth));
  EXPECT_FALSE(M("src_ip:fe80::/10", kNtlmAuth));
  EXPECT_TRUE(M("src_ip:10.0.0.0/8", R"({"src_ip":"::ffff:10.1.2.3"})"));  // v4-mapped
  EXPECT_TRUE(M("src_ip:10.0.0.0/8 OR src_ip:fd00::/8", kNtlmAuth));
}

TEST(Fields, Ranges) {
  EXPECT_TRUE(M("dest_port:[1 TO 1024]", kJobRead));
  EXPECT_TRUE(M("dest_port:[445 TO 445]", kJobRead));
  EXPECT_FALSE(M("dest_port:{445 TO 1024]", kJobRead));
  EXPECT_FALSE(M("dest_port:[1 TO 445}", kJobRead));
  EXPECT_TRUE(M("dest_port:{444 TO 446}", kJobRead));
  EXPECT_TRUE(M("dest_port:[* TO 1024]", kJobRead));
  EXPECT_TRUE(M("src_port:[1024 TO *]", kJobRead));
  EXPECT_FALSE(M("src_port:[1 TO 1024]", kJobRead));
  EXPECT_TRUE(M("dest_port:[1 TO 1024]", kDnsQuery));
  EXPECT_FALSE(M("dest_port:[1 TO 1024]", kDnsResponse));
  EXPECT_TRUE(M("flow.age:[1.5 TO 12]", kFlow));
  EXPECT_TRUE(M("dns.flags:[100 TO 200]", kDnsQuery));  // numeric strings compare as numbers
  EXPECT_FALSE(M("dest_port:[1 TO 1024]", kJobRead) == false);
  // Timestamps (and other text) compare as strings, case-insensitively.
  EXPECT_TRUE(M("timestamp:[2017-12-20 TO 2017-12-21]", kJobRead));
  EXPECT_FALSE(M("timestamp:[2017-12-21 TO *]", kJobRead));
  EXPECT_TRUE(M(R"(timestamp:["2017-12-20T09:00:00" TO "2017-12-20T09:00:02"])", kJobRead));
  EXPECT_TRUE(M("smb.command:[smb2_command_r TO smb2_command_s]", kJobRead));
}

TEST(Fields, Groups) {
  EXPECT_TRUE(M("event_type:(dns OR dcerpc)", kEpmapper));
  EXPECT_FALSE(M("event_type:(dns OR dcerpc)", kJobRead));
  EXPECT_TRUE(M("smb.filename:(*.job *.xml)", kJobRead) == false);  // implicit AND
  EXPECT_TRUE(M("smb.filename:(*.job OR *.xml)", kJobRead));
  EXPECT_TRUE(M("dest_port:(NOT 53)", kJobRead));
  EXPECT_TRUE(M("dest_port:([1 TO 100] OR 445)", kJobRead));
  EXPECT_EQ(MustParse("event_type:(dns OR \"dcerpc\" OR [a TO b])").ToString(),
            "event_type:dns OR event_type:\"dcerpc\" OR event_type:[\"a\" TO \"b\"]");
}

// ---------------------------------------------------------------------------------------------
// Operators

TEST(Operators, AndOrNotPrecedenceAndParentheses) {
  EXPECT_TRUE(M("atsvc AND smb", kCreateAtsvc));
  EXPECT_TRUE(M("atsvc smb", kCreateAtsvc));  // implicit AND
  EXPECT_FALSE(M("atsvc dns", kCreateAtsvc));
  EXPECT_TRUE(M("atsvc OR dns", kCreateAtsvc));
  EXPECT_TRUE(M("NOT dns", kCreateAtsvc));
  EXPECT_FALSE(M("NOT NOT dns", kCreateAtsvc));
  EXPECT_TRUE(M("NOT (dns OR flow)", kCreateAtsvc));
  // NOT > AND > OR
  EXPECT_TRUE(M("dns AND flow OR atsvc", kCreateAtsvc));
  EXPECT_FALSE(M("dns AND (flow OR atsvc)", kCreateAtsvc));
  EXPECT_TRUE(M("atsvc OR dns AND flow", kCreateAtsvc));
  EXPECT_FALSE(M("NOT atsvc AND smb", kCreateAtsvc));
  EXPECT_TRUE(M("NOT dns AND smb", kCreateAtsvc));
  // Lower-case words are terms.
  EXPECT_FALSE(M("atsvc and dns", kCreateAtsvc));
  EXPECT_TRUE(M("atsvc and", R"({"message":"atsvc and"})"));
  EXPECT_EQ(MustParse("a b OR c NOT d").ToString(), "a AND b OR c AND NOT d");
  EXPECT_EQ(MustParse("(a OR b) c").ToString(), "(a OR b) AND c");
  EXPECT_EQ(MustParse("((a AND (b AND c)))").ToString(), "a AND b AND c");
  EXPECT_EQ(MustParse("NOT (a OR b)").ToString(), "NOT (a OR b)");
  EXPECT_EQ(MustParse("NOT(a)").ToString(), "NOT a");
  EXPECT_EQ(MustParse("a OR (b OR c)").ToString(), "a OR b OR c");
}

// ---------------------------------------------------------------------------------------------
// Errors

struct ErrorCase {
  const char* query;
  int column;
  const char* message;  // the start of the message
};

TEST(Errors, PointAtTheColumn) {
  const std::vector<ErrorCase> cases = {
      {"", 1, "empty query at column 1"},
      {"   ", 4, "empty query"},
      {"(atsvc AND smb", 15, "expected ')' to close the '(' at column 1, at column 15"},
      {"(atsvc AND smb dns", 19, "expected ')'"},
      {"atsvc)", 6, "unexpected ')' at column 6"},
      {"()", 2, "empty parentheses"},
      {"atsvc AND", 10, "expected a term after AND"},
      {"atsvc AND OR smb", 11, "expected a term after AND"},
      {"atsvc OR", 9, "expected a term after OR"},
      {"atsvc OR )", 10, "expected a term after OR"},
      {"NOT", 4, "expected a term after NOT"},
      {"smb NOT", 8, "expected a term after NOT"},
      {"AND smb", 1, "unexpected AND, expected a term"},
      {"OR smb", 1, "unexpected OR"},
      {"smb (OR dns)", 6, "unexpected OR"},
      {"\"IPC$ atsvc", 1, "unterminated quoted phrase starting at column 1"},
      {"smb \"abc\\\"", 5, "unterminated quoted phrase"},
      {"\"  \"", 1, "phrase has no searchable characters"},
      {"smb @", 5, "term '@' has no searchable characters"},
      {"smb.filename:", 14, "expected a value after 'smb.filename:'"},
      {"smb.filename: x", 14, "expected a value after"},
      {"(smb.filename:)", 15, "expected a value after"},
      {"smb..filename:x", 5, "empty segment in field name 'smb..filename'"},
      {"smb.:x", 5, "empty segment"},
      {"dest_port:[1 1024]", 14, "expected TO in range"},
      {"dest_port:[1 TO 1024", 21, "expected ']' or '}' to close the range at column 11"},
      {"dest_port:[1 TO ]", 17, "expected a range bound"},
      {"dest_port:[ TO 5]", 13, "expected a range bound before TO"},
      {"dest_port:[]", 12, "expected a range bound"},
      {"dest_port:[1 TO \"5]", 17, "unterminated quoted phrase"},
      {"src_ip:10.0.0.0/33", 17, "invalid CIDR prefix length '33' (0-32)"},
      {"src_ip:10.0.0.0/", 17, "invalid CIDR prefix length"},
      {"src_ip:10.0.0.0/8x", 17, "invalid CIDR prefix length"},
      {"src_ip:fd00::/129", 15, "invalid CIDR prefix length '129' (0-128)"},
      {"event_type:(smb", 16, "expected ')'"},
      {"event_type:()", 13, "empty parentheses"},
      {"smb.filename:\"\"", 14, "phrase has no searchable characters"},
  };
  for (const auto& c : cases) {
    Error e;
    auto q = Query::Parse(c.query, &e);
    EXPECT_FALSE(q.has_value()) << c.query;
    EXPECT_EQ(e.column, c.column) << c.query << " -> " << e.message;
    EXPECT_EQ(e.message.rfind(c.message, 0), 0u) << c.query << " -> " << e.message;
    EXPECT_NE(e.message.find("at column " + std::to_string(c.column)), std::string::npos)
        << e.message;
  }
  // A null error pointer is allowed.
  EXPECT_FALSE(Query::Parse("(", nullptr).has_value());
}

TEST(Errors, DeepNestingIsAnErrorNotAStackOverflow) {
  for (const char* unit : {"(", "NOT ", "f:("}) {
    std::string q;
    for (int i = 0; i < 3000; ++i) q += unit;
    q += "x";
    Error e;
    EXPECT_FALSE(Query::Parse(q, &e).has_value());
    EXPECT_NE(e.message.find("nested deeper than 64"), std::string::npos) << e.message;
  }
  std::string ok;
  for (int i = 0; i < kMaxDepth; ++i) ok += "(";
  ok += "atsvc";
  for (int i = 0; i < kMaxDepth; ++i) ok += ")";
  EXPECT_TRUE(M(ok, kCreateAtsvc));
  std::string nots;
  for (int i = 0; i < kMaxDepth; ++i) nots += "NOT ";
  EXPECT_TRUE(M(nots + "atsvc", kCreateAtsvc));  // an even number of NOTs
}

TEST(Errors, Limits) {
  Error e;
  EXPECT_FALSE(Query::Parse(std::string(kMaxQueryBytes + 1, 'a'), &e).has_value());
  EXPECT_EQ(e.column, static_cast<int>(kMaxQueryBytes) + 1);
  std::string many;
  for (int i = 0; i <= kMaxClauses; ++i) many += "a ";
  EXPECT_FALSE(Query::Parse(many, &e).has_value());
  EXPECT_NE(e.message.find("more than 1024 clauses"), std::string::npos);
  // A long flat chain is fine (n-ary nodes, no recursion per clause).
  std::string chain = "atsvc";
  for (int i = 0; i < kMaxClauses - 1; ++i) chain += " OR dns";
  EXPECT_TRUE(M(chain, kCreateAtsvc));
}

// ---------------------------------------------------------------------------------------------
// Canonical form

TEST(Canonical, ToStringRoundTrips) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"AV.job AND SMB", "av.job AND smb"},
      {"*.JOB   SMB", "*.job AND smb"},
      {R"("IPC$  ATSVC")", R"("ipc$ atsvc")"},
      {R"(Windows\Tasks\AV.job)", R"(windows\tasks\av.job)"},
      {"smb.filename:*.JOB", "smb.filename:*.job"},
      {"src_ip:10.1.2.3/8", "src_ip:10.0.0.0/8"},
      {"src_ip:FD00:0::9", "src_ip:fd00::9"},
      {"dest_port:[1 TO 1024}", "dest_port:[1 TO 1024}"},
      {"timestamp:{2017-12-20 TO *]", R"(timestamp:{"2017-12-20" TO *])"},
      {"f:*", "f:*"},
      {R"(message:"a \"b\" c")", R"(message:"a b c")"},
      {"NOT NOT a", "NOT NOT a"},
      {"a OR b AND NOT (c OR d)", "a OR b AND NOT (c OR d)"},
  };
  for (const auto& [in, want] : cases) {
    const Query q = MustParse(in);
    EXPECT_EQ(q.ToString(), want) << in;
    EXPECT_EQ(q.text(), in);
    EXPECT_EQ(MustParse(q.ToString()).ToString(), want) << in;
  }
}

// ---------------------------------------------------------------------------------------------
// Prefilters

TEST(Prefilter, Fts5Expressions) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"atsvc", R"("atsvc")"},
      {"AV.job AND SMB", R"("av.job" AND "smb")"},
      {"*.JOB AND SMB", R"("smb")"},
      {"*.JOB", ""},
      {"AV.j?b", R"("av.j"*)"},
      {"av.j*", R"("av.j"*)"},
      {R"(Windows\Tasks\AV*)", R"("windows tasks av"*)"},
      {R"(Windows\Tasks\*.job)", R"("windows tasks")"},
      {R"(*\Tasks\AV.job)", R"("tasks av.job")"},
      {R"("IPC$ atsvc")", R"("ipc$ atsvc")"},
      {"atsvc OR svcctl", R"("atsvc" OR "svcctl")"},
      {"atsvc OR *.job", ""},
      {"(atsvc OR svcctl) AND smb", R"(("atsvc" OR "svcctl") AND "smb")"},
      {"atsvc AND NOT dns", R"("atsvc")"},
      {"NOT dns", ""},
      {"ntlm", ""},
      {"ntlm AND appadmin", R"("appadmin")"},
      {"smb.filename:*.job", ""},
      {R"(smb.filename:Windows\Tasks\*)", R"("windows tasks")"},
      {R"(smb.filename:Windows\Tasks\AV*)", R"("windows tasks av"*)"},
      {"smb.filename:*.job AND smb", R"("smb")"},
      {"event_type:smb", R"("smb")"},
      {R"(message:"IPC$ svcctl")", R"("ipc$ svcctl")"},
      {"smb.filename:*/tasks/*", R"("tasks")"},
      {"dest_port:445", ""},
      {"dest_port:[1 TO 1024]", ""},
      {"src_ip:10.0.0.0/8", ""},
      {"src_ip:10.0.0.*", ""},
      {"dns.rd:t*", ""},
      {"f:*", ""},
      {"#", ""},  // no ASCII letter or digit: FTS5 would see an empty phrase
      {"a#b", R"("a#b")"},
      {"say \"x\"", R"("say" AND "x")"},
  };
  for (const auto& [q, want] : cases) EXPECT_EQ(MustParse(q).Fts5Prefilter(), want) << q;
}

TEST(Prefilter, RequiredFragments) {
  using F = std::vector<std::vector<std::string>>;
  EXPECT_EQ(MustParse("atsvc AND \"IPC$\"").RequiredFragments(), (F{{"atsvc", "ipc$"}}));
  EXPECT_EQ(MustParse("*.JOB AND SMB").RequiredFragments(), (F{{".job", "smb"}}));
  EXPECT_EQ(MustParse("AV.j?b").RequiredFragments(), (F{{"av.j"}}));
  EXPECT_EQ(MustParse("atsvc OR svcctl").RequiredFragments(), (F{{"atsvc"}, {"svcctl"}}));
  EXPECT_EQ(MustParse("(atsvc OR svcctl) AND ipc$").RequiredFragments(),
            (F{{"atsvc", "ipc$"}, {"ipc$", "svcctl"}}));
  EXPECT_EQ(MustParse("atsvc OR NOT x").RequiredFragments(), F{});
  EXPECT_EQ(MustParse("NOT atsvc").RequiredFragments(), F{});
  EXPECT_EQ(MustParse("dest_port:445").RequiredFragments(), F{});
  EXPECT_EQ(MustParse("smb.filename:*.job").RequiredFragments(), (F{{".job"}}));
  EXPECT_EQ(MustParse("a").RequiredFragments(), F{});  // too short to be useful
  EXPECT_EQ(MustParse("av.job AND *.job").RequiredFragments(), (F{{"av.job"}}));
  EXPECT_EQ(MustParse("ntlm").RequiredFragments(), F{});
}

class Fts5Db {
 public:
  explicit Fts5Db(const char* tokenize) {
    EXPECT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    const std::string sql = std::string("CREATE VIRTUAL TABLE t USING fts5(text, tokenize=\"") +
                            tokenize + "\", prefix='2 3')";
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
  }
  ~Fts5Db() { sqlite3_close(db_); }
  void Insert(int64_t id, const std::string& text) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "INSERT INTO t(rowid, text) VALUES(?, ?)", -1, &st, nullptr);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }
  // Row ids matching `expr`; false when FTS5 rejects the expression.
  bool Match(const std::string& expr, std::set<int64_t>* ids) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT rowid FROM t WHERE t MATCH ?", -1, &st, nullptr) !=
        SQLITE_OK) {
      return false;
    }
    sqlite3_bind_text(st, 1, expr.c_str(), static_cast<int>(expr.size()), SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids->insert(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Queries built from the events' own words, so that many of them match.
std::vector<std::string> RandomQueries(size_t n) {
  std::mt19937 rng(4242);
  const std::vector<Json> events = AllEvents();
  std::vector<std::string> words;
  for (const Json& ev : events) {
    for (auto& t : Tokenize(IndexText(ev))) words.push_back(t);
  }
  const std::vector<std::string> fields = {"smb.filename",
                                           "event_type",
                                           "message",
                                           "smb.share",
                                           "dcerpc.interfaces.service",
                                           "dest_port",
                                           "src_ip",
                                           "dns.rd",
                                           "app_proto",
                                           "smb.ntlmssp.user",
                                           "smb.command",
                                           "dns.queries.rrname"};
  auto pick = [&](size_t k) { return std::uniform_int_distribution<size_t>(0, k - 1)(rng); };
  auto mangle = [&](std::string w) {
    switch (pick(8)) {
      case 0:
        if (w.size() > 2) w = w.substr(0, pick(w.size() - 1) + 1) + "*";
        break;
      case 1:
        if (w.size() > 2) w = "*" + w.substr(pick(w.size()));
        break;
      case 2:
        if (!w.empty()) w[pick(w.size())] = '?';
        break;
      case 3:
        for (char& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        break;
      default:
        break;
    }
    return w;
  };
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    const size_t r = depth > 2 ? pick(5) : pick(9);
    switch (r) {
      case 0:
      case 1:
        return mangle(words[pick(words.size())]);
      case 2: {
        const size_t i = pick(words.size() - 1);
        return "\"" + words[i] + " " + words[i + 1] + "\"";
      }
      case 3: {
        const std::string& f = fields[pick(fields.size())];
        const size_t k = pick(4);
        if (k == 0) return f + ":*";
        if (k == 1) return f + ":\"" + words[pick(words.size())] + "\"";
        return f + ":" + mangle(words[pick(words.size())]);
      }
      case 4:
        return mangle(words[pick(words.size())]) + "\\" + mangle(words[pick(words.size())]);
      case 5:
        return gen(depth + 1) + " AND " + gen(depth + 1);
      case 6:
        return "(" + gen(depth + 1) + " OR " + gen(depth + 1) + ")";
      case 7:
        return "NOT " + gen(depth + 1);
      default:
        return gen(depth + 1) + " " + gen(depth + 1);
    }
  };
  std::vector<std::string> out;
  while (out.size() < n) {
    std::string q = gen(0);
    if (Query::Parse(q, nullptr)) out.push_back(std::move(q));
  }
  return out;
}

TEST(Prefilter, SoundAgainstSqliteFts5AndFragments) {
  const std::vector<Json> events = AllEvents();
  // The recommended tokenizer (selective) and the default one (must stay sound).
  Fts5Db recommended("unicode61 remove_diacritics 0 tokenchars '.$-_'");
  Fts5Db plain("unicode61");
  std::vector<std::string> texts;
  for (size_t i = 0; i < events.size(); ++i) {
    texts.push_back(IndexText(events[i]));
    recommended.Insert(static_cast<int64_t>(i), texts.back());
    plain.Insert(static_cast<int64_t>(i), texts.back());
  }
  std::vector<std::string> queries = {"atsvc",
                                      "AV.job AND SMB",
                                      "*.JOB AND SMB",
                                      "AV.j?b",
                                      R"(Windows\Tasks\AV*)",
                                      R"("IPC$ atsvc")",
                                      R"(smb.filename:Windows\Tasks\*)",
                                      "event_type:smb",
                                      R"(message:"IPC$ svcctl")",
                                      "atsvc OR svcctl",
                                      "(svcctl OR av.job) AND smb",
                                      "smb.filename:*/tasks/*",
                                      "ntlm AND appadmin",
                                      R"(\\dc1\ADMIN$)",
                                      "psexesvc*",
                                      "dns.queries.rrname:www.suricata-ids.*",
                                      "suricata-ids.org",
                                      "DC1.contoso.local",
                                      R"("ipc$ samr")",
                                      "epmapper OR dns",
                                      "appadmin AND corp"};
  const std::vector<std::string> random = RandomQueries(3000);
  queries.insert(queries.end(), random.begin(), random.end());

  size_t with_fts = 0, with_fragments = 0, matched_pairs = 0, fts_candidates = 0;
  for (const std::string& text : queries) {
    const Query q = MustParse(text);
    const std::string fts = q.Fts5Prefilter();
    std::set<int64_t> hits_a, hits_b;
    if (!fts.empty()) {
      ++with_fts;
      ASSERT_TRUE(recommended.Match(fts, &hits_a)) << text << " -> " << fts;
      ASSERT_TRUE(plain.Match(fts, &hits_b)) << text << " -> " << fts;
      fts_candidates += hits_a.size();
    }
    const auto frags = q.RequiredFragments();
    if (!frags.empty()) ++with_fragments;
    for (size_t i = 0; i < events.size(); ++i) {
      if (!q.Matches(events[i])) continue;
      ++matched_pairs;
      if (!fts.empty()) {
        EXPECT_TRUE(hits_a.count(static_cast<int64_t>(i))) << text << " | " << fts << " | " << i;
        EXPECT_TRUE(hits_b.count(static_cast<int64_t>(i))) << text << " | " << fts << " | " << i;
      }
      if (!frags.empty()) {
        bool some = false;
        for (const auto& alt : frags) {
          bool all = true;
          for (const auto& f : alt) all = all && texts[i].find(f) != std::string::npos;
          some = some || all;
        }
        EXPECT_TRUE(some) << text << " | event " << i;
      }
    }
  }
  std::printf(
      "prefilter soundness: %zu queries, %zu with an FTS5 expression, %zu with fragments, "
      "%zu matching (query, event) pairs, %zu FTS5 candidates\n",
      queries.size(), with_fts, with_fragments, matched_pairs, fts_candidates);
  EXPECT_GT(with_fts, queries.size() / 3);
  EXPECT_GT(matched_pairs, 1000u);
}

// ---------------------------------------------------------------------------------------------
// Performance sanity (prints; never fails on timing)

TEST(Performance, MillionEvaluationsOfAFiveClauseQuery) {
  const Json ev = Json::parse(kJobRead);
  const Query q = MustParse(
      R"(smb AND smb.filename:*.job AND src_ip:10.0.0.0/8 AND dest_port:[1 TO 1024] AND "C$")");
  ASSERT_TRUE(q.Matches(ev));
  const Query miss = MustParse("*.exe AND smb AND dest_port:445 AND src_ip:10.0.0.0/8 AND atsvc");
  constexpr int kN = 1000000;
  int hits = 0;
  // CPU time, not wall time: the test machine may be shared.
  auto cpu_seconds = [](std::clock_t since) {
    return static_cast<double>(std::clock() - since) / CLOCKS_PER_SEC;
  };
  std::clock_t t0 = std::clock();
  for (int i = 0; i < kN; ++i) hits += q.Matches(ev);
  const double s_hit = cpu_seconds(t0);
  t0 = std::clock();
  for (int i = 0; i < kN; ++i) hits += miss.Matches(ev);
  const double s_miss = cpu_seconds(t0);
  EXPECT_EQ(hits, kN);
  std::printf(
      "1M evaluations (CPU time): matching 5-clause query %.3f s (%.0f ns each), "
      "failing one %.3f s (%.0f ns each)\n",
      s_hit, s_hit * 1e3, s_miss, s_miss * 1e3);
}

}  // namespace
}  // namespace vigil::ctl::query
