// Kerberos decoding and the krb5 app-layer parser, on DER built inline (and one AP-REP lifted
// from a capture).
#include "dataplane/proto/krb5.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::CollectSink;

// --- A small DER builder --------------------------------------------------------------------

Bytes Tlv(uint8_t tag, const Bytes& c) {
  Bytes out{tag};
  const size_t n = c.size();
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
  } else if (n < 0x100) {
    out.insert(out.end(), {0x81, static_cast<uint8_t>(n)});
  } else if (n < 0x10000) {
    out.insert(out.end(), {0x82, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  } else {
    out.insert(out.end(), {0x83, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                           static_cast<uint8_t>(n)});
  }
  out.insert(out.end(), c.begin(), c.end());
  return out;
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes Seq(std::initializer_list<Bytes> parts) { return Tlv(0x30, Cat(parts)); }
Bytes Ctx(int n, const Bytes& inner) { return Tlv(static_cast<uint8_t>(0xa0 | n), inner); }
Bytes App(int n, const Bytes& inner) { return Tlv(static_cast<uint8_t>(0x60 | n), inner); }
Bytes Int(int64_t v) {
  Bytes c;
  for (int i = 7; i >= 0; --i) c.push_back(static_cast<uint8_t>(v >> (8 * i)));
  // Minimal two's complement.
  while (c.size() > 1 && ((c[0] == 0 && !(c[1] & 0x80)) || (c[0] == 0xff && (c[1] & 0x80)))) {
    c.erase(c.begin());
  }
  return Tlv(0x02, c);
}
Bytes Str(const std::string& s) { return Tlv(0x1b, Bytes(s.begin(), s.end())); }
Bytes Oct(const Bytes& b) { return Tlv(0x04, b); }
Bytes Principal(int type, std::initializer_list<std::string> parts) {
  Bytes names;
  for (const auto& p : parts) {
    const Bytes s = Str(p);
    names.insert(names.end(), s.begin(), s.end());
  }
  return Seq({Ctx(0, Int(type)), Ctx(1, Tlv(0x30, names))});
}
Bytes EncData(int etype, size_t cipher_len, bool kvno = true) {
  Bytes c = Ctx(0, Int(etype));
  if (kvno) c = Cat({c, Ctx(1, Int(2))});
  return Tlv(0x30, Cat({c, Ctx(2, Oct(Bytes(cipher_len, 0xab)))}));
}
Bytes Ticket(const std::string& realm, std::initializer_list<std::string> sname, int etype,
             size_t cipher_len = 40) {
  return App(1, Seq({Ctx(0, Int(5)), Ctx(1, Str(realm)), Ctx(2, Principal(2, sname)),
                     Ctx(3, EncData(etype, cipher_len))}));
}
Bytes KerberosTime() {
  return Tlv(0x18,
             Bytes{'2', '0', '3', '7', '0', '9', '1', '3', '0', '2', '4', '8', '0', '5', 'Z'});
}
Bytes EtypeList(std::initializer_list<int> etypes) {
  Bytes c;
  for (int e : etypes) {
    const Bytes i = Int(e);
    c.insert(c.end(), i.begin(), i.end());
  }
  return Tlv(0x30, c);
}
Bytes ReqBody(bool with_cname, const std::string& realm, std::initializer_list<std::string> sname,
              std::initializer_list<int> etypes) {
  Bytes c = Ctx(0, Tlv(0x03, Bytes{0, 0x40, 0x81, 0x00, 0x10}));
  if (with_cname) c = Cat({c, Ctx(1, Principal(1, {"alice"}))});
  c = Cat({c, Ctx(2, Str(realm)), Ctx(3, Principal(2, sname)), Ctx(5, KerberosTime()),
           Ctx(7, Int(12345678)), Ctx(8, EtypeList(etypes))});
  return Tlv(0x30, c);
}
Bytes ApReq(const Bytes& ticket, int auth_etype) {
  return App(14, Seq({Ctx(0, Int(5)), Ctx(1, Int(14)), Ctx(2, Tlv(0x03, Bytes{0, 0, 0, 0, 0})),
                      Ctx(3, ticket), Ctx(4, EncData(auth_etype, 60, false))}));
}
Bytes AsReq() {
  const Bytes padata =
      Seq({Seq({Ctx(1, Int(2)), Ctx(2, Oct(EncData(18, 54)))}),
           Seq({Ctx(1, Int(128)), Ctx(2, Oct(Seq({Ctx(0, Tlv(0x01, {0xff}))})))})});
  return App(10,
             Seq({Ctx(1, Int(5)), Ctx(2, Int(10)), Ctx(3, padata),
                  Ctx(4, ReqBody(true, "CORP.LOCAL", {"krbtgt", "CORP.LOCAL"}, {18, 17, 23}))}));
}
Bytes TgsReq(size_t tgt_cipher = 200) {
  const Bytes ap = ApReq(Ticket("CORP.LOCAL", {"krbtgt", "CORP.LOCAL"}, 18, tgt_cipher), 18);
  const Bytes padata = Seq({Seq({Ctx(1, Int(1)), Ctx(2, Oct(ap))})});
  return App(12, Seq({Ctx(1, Int(5)), Ctx(2, Int(12)), Ctx(3, padata),
                      Ctx(4, ReqBody(false, "CORP.LOCAL", {"MSSQLSvc", "db01"}, {23, 18}))}));
}
Bytes KdcRep(int type, const std::string& cname, const Bytes& ticket, int enc_etype,
             size_t enc_len = 80) {
  return App(type, Seq({Ctx(0, Int(5)), Ctx(1, Int(type)),
                        Ctx(2, Seq({Seq({Ctx(1, Int(19)), Ctx(2, Oct(Bytes{0x30, 0}))})})),
                        Ctx(3, Str("CORP.LOCAL")), Ctx(4, Principal(1, {cname})), Ctx(5, ticket),
                        Ctx(6, EncData(enc_etype, enc_len))}));
}
Bytes TgsRep(int ticket_etype = 23, size_t ticket_cipher = 100) {
  return KdcRep(13, "appadmin",
                Ticket("CORP.LOCAL", {"MSSQLSvc", "db01"}, ticket_etype, ticket_cipher), 18);
}
Bytes AsRep() {
  return KdcRep(11, "alice", Ticket("CORP.LOCAL", {"krbtgt", "CORP.LOCAL"}, 18), 18);
}
Bytes KrbError(int code, bool with_client) {
  Bytes c = Cat({Ctx(0, Int(5)), Ctx(1, Int(30)), Ctx(4, KerberosTime()), Ctx(5, Int(1234)),
                 Ctx(6, Int(code))});
  if (with_client) c = Cat({c, Ctx(7, Str("CORP.LOCAL")), Ctx(8, Principal(1, {"alice"}))});
  c = Cat({c, Ctx(9, Str("CORP.LOCAL")), Ctx(10, Principal(2, {"krbtgt", "CORP.LOCAL"}))});
  return App(30, Tlv(0x30, c));
}
Bytes ApRep() {
  return App(15, Seq({Ctx(0, Int(5)), Ctx(1, Int(15)), Ctx(2, EncData(18, 30, false))}));
}
Bytes Gss(const Bytes& msg, uint8_t tok0, bool ms_oid = false) {
  const Bytes oid = ms_oid
                        ? Bytes{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
                        : Bytes{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
  return Tlv(0x60, Cat({oid, Bytes{tok0, 0x00}, msg}));
}
Bytes Record(const Bytes& msg) {
  const uint32_t n = static_cast<uint32_t>(msg.size());
  Bytes out{static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
            static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

// The Kerberos AP-REP GSS token of an SMB2 session setup response (zeek kerberos445_auth).
const Bytes kRealApRepGss = {
    0x60, 0x81, 0x98, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x02, 0x00,
    0x6f, 0x81, 0x88, 0x30, 0x81, 0x85, 0xa0, 0x03, 0x02, 0x01, 0x05, 0xa1, 0x03, 0x02, 0x01, 0x0f,
    0xa2, 0x79, 0x30, 0x77, 0xa0, 0x03, 0x02, 0x01, 0x12, 0xa2, 0x70, 0x04, 0x6e, 0x11, 0xb3, 0xec,
    0xaa, 0x80, 0xce, 0xab, 0x09, 0xec, 0x55, 0xfe, 0xec, 0xba, 0xc6, 0xf8, 0xe7, 0x83, 0x07, 0xf0,
    0x65, 0x83, 0xf4, 0x36, 0xb7, 0x34, 0x8d, 0x2f, 0x2e, 0x06, 0xd5, 0x7b, 0x1d, 0x4b, 0x61, 0x42,
    0x1d, 0xe5, 0x8b, 0x29, 0x9e, 0xaf, 0xce, 0x3b, 0x96, 0x73, 0xc8, 0xdd, 0x3f, 0xf6, 0x1d, 0x7b,
    0x13, 0x04, 0x3e, 0x44, 0xc5, 0x09, 0x24, 0xaa, 0xfb, 0x6f, 0x72, 0xe0, 0x6a, 0x2d, 0x10, 0x77,
    0x13, 0x83, 0x7a, 0x96, 0x83, 0x23, 0x02, 0xb3, 0x3d, 0x97, 0x48, 0x6d, 0x1a, 0x36, 0xdd, 0x42,
    0x38, 0xd1, 0xdf, 0xe1, 0x8a, 0x30, 0x9f, 0xe4, 0x2d, 0x51, 0xfb, 0xdb, 0xf2, 0x3a, 0x74, 0xd9,
    0xbd, 0xea, 0xcc, 0x65, 0x8f, 0x1c, 0x08, 0xb0, 0xcf, 0xc6, 0x38};

std::span<const uint8_t> S(const Bytes& b) { return {b.data(), b.size()}; }

std::string Json(const Krb5Message& m, uint8_t req = 0) {
  char buf[2048];
  JsonWriter w(buf, sizeof buf);
  WriteKrb5Json(m, req, w);
  return std::string(w.view());
}
std::string Msg(const Krb5Message& m) {
  TextBuilder t;
  AppendKrb5Message(m, t);
  return std::string(t.view());
}

// --- ParseKrb5 ------------------------------------------------------------------------------

TEST(Krb5Parse, AsReq) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(AsReq()), &m));
  EXPECT_EQ(m.msg_type, 10);
  EXPECT_EQ(m.cname.view(), "alice");
  EXPECT_EQ(m.realm.view(), "CORP.LOCAL");
  EXPECT_EQ(m.sname.view(), "krbtgt/CORP.LOCAL");
  ASSERT_EQ(m.etype_count, 3);
  EXPECT_EQ(m.etypes[0], 18);
  EXPECT_EQ(m.etypes[2], 23);
  EXPECT_TRUE(m.has_padata_enc_ts);
  EXPECT_EQ(m.ticket_etype, -1);
  EXPECT_EQ(Json(m),
            R"("msg_type":"KRB_AS_REQ","cname":"alice","realm":"CORP.LOCAL",)"
            R"("sname":"krbtgt/CORP.LOCAL","encryption":"<none>","weak_encryption":false)");
  EXPECT_EQ(Msg(m), "KRB5 AS-REQ alice@CORP.LOCAL for krbtgt/CORP.LOCAL");
}

TEST(Krb5Parse, TgsReqTakesTicketEtypeFromPaTgsReq) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(TgsReq()), &m));
  EXPECT_EQ(m.msg_type, 12);
  EXPECT_TRUE(m.cname.empty());
  EXPECT_EQ(m.realm.view(), "CORP.LOCAL");
  EXPECT_EQ(m.sname.view(), "MSSQLSvc/db01");
  EXPECT_EQ(m.ticket_etype, 18);  // the TGT's
  ASSERT_EQ(m.etype_count, 2);
  EXPECT_EQ(m.etypes[0], 23);
  EXPECT_FALSE(m.has_padata_enc_ts);
  EXPECT_EQ(Json(m), R"("msg_type":"KRB_TGS_REQ","cname":"<empty>","realm":"CORP.LOCAL",)"
                     R"("sname":"MSSQLSvc/db01","encryption":"<none>","weak_encryption":false)");
  EXPECT_EQ(Msg(m), "KRB5 TGS-REQ CORP.LOCAL for MSSQLSvc/db01");
}

TEST(Krb5Parse, TgsRep) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(TgsRep()), &m));
  EXPECT_EQ(m.msg_type, 13);
  EXPECT_EQ(m.cname.view(), "appadmin");
  EXPECT_EQ(m.realm.view(), "CORP.LOCAL");
  EXPECT_EQ(m.sname.view(), "MSSQLSvc/db01");
  EXPECT_EQ(m.ticket_etype, 23);
  EXPECT_EQ(m.enc_part_etype, 18);
  ASSERT_EQ(m.etype_count, 1);
  EXPECT_EQ(m.etypes[0], 18);
  EXPECT_EQ(Json(m), R"("msg_type":"KRB_TGS_REP","cname":"appadmin","realm":"CORP.LOCAL",)"
                     R"("sname":"MSSQLSvc/db01","encryption":"aes256-cts-hmac-sha1-96",)"
                     R"("weak_encryption":false,"ticket_encryption":"rc4-hmac",)"
                     R"("ticket_weak_encryption":true)");
  EXPECT_EQ(Msg(m), "KRB5 TGS-REP appadmin@CORP.LOCAL for MSSQLSvc/db01 rc4-hmac (weak)");
}

TEST(Krb5Parse, AsRep) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(AsRep()), &m));
  EXPECT_EQ(m.msg_type, 11);
  EXPECT_EQ(m.cname.view(), "alice");
  EXPECT_EQ(m.sname.view(), "krbtgt/CORP.LOCAL");
  EXPECT_EQ(m.ticket_etype, 18);
  EXPECT_EQ(Msg(m), "KRB5 AS-REP alice@CORP.LOCAL for krbtgt/CORP.LOCAL aes256-cts-hmac-sha1-96");
}

TEST(Krb5Parse, KrbError) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(KrbError(25, true)), &m));
  EXPECT_EQ(m.msg_type, 30);
  EXPECT_EQ(m.error_code, 25);
  EXPECT_EQ(m.cname.view(), "alice");
  EXPECT_EQ(m.realm.view(), "CORP.LOCAL");
  EXPECT_EQ(m.service_realm.view(), "CORP.LOCAL");
  EXPECT_EQ(m.sname.view(), "krbtgt/CORP.LOCAL");
  EXPECT_EQ(Json(m, 10),
            R"("msg_type":"KRB_ERROR","failed_request":"KRB_AS_REQ",)"
            R"("error_code":"KDC_ERR_PREAUTH_REQUIRED","cname":"alice","realm":"CORP.LOCAL",)"
            R"("sname":"krbtgt/CORP.LOCAL","encryption":"<none>","weak_encryption":false)");
  EXPECT_EQ(Msg(m),
            "KRB5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED alice@CORP.LOCAL for krbtgt/CORP.LOCAL");

  ASSERT_TRUE(ParseKrb5(S(KrbError(99, false)), &m));
  EXPECT_TRUE(m.realm.empty());
  EXPECT_EQ(Json(m, 0),
            R"j("msg_type":"KRB_ERROR","failed_request":"UNKNOWN","error_code":"ErrorCode(99)",)j"
            R"("cname":"<empty>","realm":"<empty>","sname":"krbtgt/CORP.LOCAL",)"
            R"("encryption":"<none>","weak_encryption":false)");
  EXPECT_EQ(Msg(m), "KRB5 KRB-ERROR ErrorCode(99) CORP.LOCAL for krbtgt/CORP.LOCAL");
}

TEST(Krb5Parse, ApReqRawAndGss) {
  const Bytes ap = ApReq(Ticket("SRT-AD.LOCAL", {"cifs", "BLACKCLOVER-DC"}, 18), 18);
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(ap), &m));
  EXPECT_EQ(m.msg_type, 14);
  EXPECT_EQ(m.realm.view(), "SRT-AD.LOCAL");
  EXPECT_EQ(m.sname.view(), "cifs/BLACKCLOVER-DC");
  EXPECT_EQ(m.ticket_etype, 18);
  EXPECT_EQ(m.enc_part_etype, 18);
  EXPECT_EQ(Msg(m), "KRB5 AP-REQ SRT-AD.LOCAL for cifs/BLACKCLOVER-DC aes256-cts-hmac-sha1-96");
  char buf[256];
  JsonWriter w(buf, sizeof buf);
  WriteKrb5SmbJson(m, w);
  EXPECT_EQ(w.view(), R"("realm":"SRT-AD.LOCAL","snames":["cifs","BLACKCLOVER-DC"])");

  for (bool ms : {false, true}) {
    Krb5Message g;
    ASSERT_TRUE(ParseKrb5(S(Gss(ap, 0x01, ms)), &g));
    EXPECT_EQ(g.sname.view(), "cifs/BLACKCLOVER-DC");
  }
  // Another mechanism's OID is not Kerberos.
  Bytes other = Gss(ap, 0x01);
  other[4] = 0x87;
  EXPECT_FALSE(ParseKrb5(S(other), &m));
}

TEST(Krb5Parse, RealApRep) {
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(kRealApRepGss), &m));
  EXPECT_EQ(m.msg_type, 15);
  EXPECT_EQ(m.enc_part_etype, 18);
  EXPECT_EQ(Msg(m), "KRB5 AP-REP");
  ASSERT_TRUE(ParseKrb5(S(ApRep()), &m));
  EXPECT_EQ(m.enc_part_etype, 18);
}

TEST(Krb5Parse, RejectsWrongPvnoTypeAndShapes) {
  Krb5Message m;
  // msg-type 11 inside APPLICATION 10
  Bytes bad = App(10, Seq({Ctx(1, Int(5)), Ctx(2, Int(11))}));
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  bad = App(10, Seq({Ctx(1, Int(4)), Ctx(2, Int(10))}));
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  bad = App(10, Seq({Ctx(2, Int(10))}));  // no pvno
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  bad = App(9, Seq({Ctx(0, Int(5)), Ctx(1, Int(9))}));
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  bad = Tlv(0x30, Seq({Ctx(0, Int(5))}));  // not APPLICATION
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  // A name component that is constructed.
  bad = App(30, Seq({Ctx(0, Int(5)), Ctx(1, Int(30)), Ctx(6, Int(6)),
                     Ctx(10, Seq({Ctx(0, Int(1)), Ctx(1, Seq({Seq({})}))}))}));
  EXPECT_FALSE(ParseKrb5(S(bad), &m));
  EXPECT_EQ(m.msg_type, 0);  // cleared on failure
  EXPECT_FALSE(ParseKrb5({}, &m));
}

TEST(Krb5Parse, TruncatedAtEveryLength) {
  for (const Bytes& full :
       {AsReq(), TgsReq(), TgsRep(), AsRep(), KrbError(6, true), ApRep(), kRealApRepGss}) {
    Krb5Message m;
    ASSERT_TRUE(ParseKrb5(S(full), &m));
    for (size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
      EXPECT_FALSE(ParseKrb5(S(cut), &m)) << n;
    }
  }
}

TEST(Krb5Parse, HugeLengthsAndDeepNesting) {
  Krb5Message m;
  // APPLICATION 10 with a 4-byte length far beyond the input, and with a 5-byte length.
  EXPECT_FALSE(ParseKrb5(S(Bytes{0x6a, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00}), &m));
  EXPECT_FALSE(ParseKrb5(S(Bytes{0x6a, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00, 0x30}), &m));
  // Indefinite length.
  EXPECT_FALSE(ParseKrb5(S(Bytes{0x6a, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00}), &m));
  // 5000 nested SEQUENCEs as the req-body: walked along the schema, not recursed into.
  Bytes deep;
  for (int i = 0; i < 5000; ++i) deep = Tlv(0x30, deep);
  const Bytes msg = App(10, Seq({Ctx(1, Int(5)), Ctx(2, Int(10)), Ctx(4, deep)}));
  EXPECT_FALSE(ParseKrb5(S(msg), &m));
  Bytes deep_ctx;
  for (int i = 0; i < 5000; ++i) deep_ctx = Ctx(3, deep_ctx);
  EXPECT_FALSE(ParseKrb5(S(App(10, Seq({Ctx(1, Int(5)), Ctx(2, Int(10)), deep_ctx}))), &m));
  // A PA-TGS-REQ that holds a TGS-REQ (not an AP-REQ) is not followed.
  Bytes nested = TgsReq();
  for (int i = 0; i < 50; ++i) {
    nested = App(12, Seq({Ctx(1, Int(5)), Ctx(2, Int(12)),
                          Ctx(3, Seq({Seq({Ctx(1, Int(1)), Ctx(2, Oct(nested))})}))}));
  }
  ASSERT_TRUE(ParseKrb5(S(nested), &m));
  EXPECT_EQ(m.ticket_etype, -1);
}

TEST(Krb5Parse, LongNamesAndManyEtypes) {
  const std::string longname(300, 'x');
  const Bytes msg = App(
      10, Seq({Ctx(1, Int(5)), Ctx(2, Int(10)),
               Ctx(4, Tlv(0x30,
                          Cat({Ctx(1, Principal(1, {longname})), Ctx(2, Str("R")),
                               Ctx(8, EtypeList({1, 2, 3, 5, 7, 16, 17, 18, 23, 24, -128}))})))}));
  Krb5Message m;
  ASSERT_TRUE(ParseKrb5(S(msg), &m));
  EXPECT_EQ(m.cname.len, 128);
  EXPECT_TRUE(m.cname.truncated);
  EXPECT_EQ(m.etype_count, kKrb5MaxEtypes);
  EXPECT_TRUE(m.etypes_truncated);
}

TEST(Krb5Names, EtypesAndErrors) {
  EXPECT_STREQ(Krb5EtypeName(23), "rc4-hmac");
  EXPECT_STREQ(Krb5EtypeName(-133), "rc4-hmac-OLD");
  EXPECT_EQ(Krb5EtypeName(99), nullptr);
  TextBuilder t;
  AppendKrb5Etype(-7, t);
  EXPECT_EQ(t.view(), "EncryptionType(-7)");
  EXPECT_TRUE(Krb5EtypeIsWeak(23));
  EXPECT_TRUE(Krb5EtypeIsWeak(3));
  EXPECT_FALSE(Krb5EtypeIsWeak(18));
  EXPECT_FALSE(Krb5EtypeIsWeak(26));
  EXPECT_STREQ(Krb5ErrorName(6), "KDC_ERR_C_PRINCIPAL_UNKNOWN");
  EXPECT_STREQ(Krb5MsgTypeName(13), "KRB_TGS_REP");
}

// --- Krb5Parser -----------------------------------------------------------------------------

void FeedTcp(Krb5Parser& p, Direction d, const Bytes& b, CollectSink& sink, size_t step) {
  for (size_t i = 0; i < b.size(); i += step) {
    const size_t n = std::min(step, b.size() - i);
    p.OnData(d, std::span<const uint8_t>(b.data() + i, n), sink);
  }
}

TEST(Krb5Parser, Probe) {
  const Bytes rec = Record(AsReq());
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(rec)), ProbeResult::kYes);
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(AsReq())), ProbeResult::kYes);
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToClient, S(KrbError(6, false))), ProbeResult::kYes);
  for (size_t n = 0; n < 11; ++n) {
    EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(rec).first(n)), ProbeResult::kMaybe) << n;
  }
  const Bytes http = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'};
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(http)), ProbeResult::kNo);
  Bytes bad_pvno = AsReq();
  for (size_t i = 0; i + 2 < bad_pvno.size(); ++i) {
    if (bad_pvno[i] == 0x02 && bad_pvno[i + 1] == 0x01 && bad_pvno[i + 2] == 0x05) {
      bad_pvno[i + 2] = 4;  // the first INTEGER 5 is pvno
      break;
    }
  }
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(bad_pvno)), ProbeResult::kNo);
  EXPECT_EQ(Krb5Parser::Probe(Direction::kToServer, S(Bytes{0, 1, 0, 0, 0x6a})), ProbeResult::kNo);
}

TEST(Krb5Parser, TcpExchangeSameAtAnySplit) {
  std::vector<std::string> first;
  for (size_t step : {size_t{100000}, size_t{1}, size_t{3}, size_t{7}}) {
    Krb5Parser p;
    CollectSink sink;
    FeedTcp(p, Direction::kToServer, Record(TgsReq()), sink, step);
    EXPECT_TRUE(sink.events.empty());  // held until the response
    FeedTcp(p, Direction::kToClient, Record(TgsRep()), sink, step);
    p.OnEnd(sink);
    ASSERT_EQ(sink.events.size(), 2u);
    EXPECT_EQ(sink.types[0], "krb5");
    EXPECT_EQ(sink.messages[0],
              "KRB5 TGS-REQ appadmin@CORP.LOCAL for MSSQLSvc/db01 rc4-hmac (weak)");
    EXPECT_EQ(sink.messages[1],
              "KRB5 TGS-REP appadmin@CORP.LOCAL for MSSQLSvc/db01 rc4-hmac (weak)");
    EXPECT_EQ(sink.CountContaining(R"("msg_type":"KRB_TGS_REP")"), 1u);
    EXPECT_EQ(sink.CountContaining(R"("ticket_encryption":"rc4-hmac")"), 1u);
    EXPECT_EQ(sink.CountContaining(R"("ticket_weak_encryption":true)"), 1u);
    EXPECT_EQ(sink.CountContaining(R"("event_type":"anomaly")"), 0u);
    EXPECT_FALSE(sink.unbalanced);
    if (first.empty()) {
      first = sink.events;
    } else {
      EXPECT_EQ(sink.events, first);
    }
  }
}

// The signature engine gets each AS/TGS request and reply and each error when it arrives (not
// when its event goes out), with the names and the message's type, ticket etype and error code;
// AP messages are not inspected, and the events are the same with and without inspection.
TEST(Krb5Parser, MessagesForTheSignatureEngine) {
  using rules::Buffer;
  CollectSink plain, sink;
  sink.inspect = true;
  for (CollectSink* s : {&plain, &sink}) {
    Krb5Parser p;
    FeedTcp(p, Direction::kToServer, Record(TgsReq()), *s, 7);
    if (s == &sink) {
      EXPECT_EQ(sink.inspected.size(), 1u);  // before its event
    }
    FeedTcp(p, Direction::kToClient, Record(TgsRep()), *s, 7);
    p.OnDatagram(Direction::kToServer, S(ApReq(Ticket("R", {"kadmin", "changepw"}, 18), 18)), *s);
    p.OnDatagram(Direction::kToClient, S(KrbError(6, false)), *s);
    p.OnEnd(*s);
  }
  EXPECT_EQ(sink.events, plain.events);
  EXPECT_TRUE(plain.inspected.empty());
  ASSERT_EQ(sink.inspected.size(), 3u);
  EXPECT_EQ(sink.inspected[0].first, Direction::kToServer);
  EXPECT_EQ(sink.krb5[0].msg_type, 12);
  EXPECT_EQ(sink.krb5[0].ticket_etype, -1);  // its TGT's etype (18) is not the ticket's
  EXPECT_EQ(sink.inspected[0].second.at(Buffer::kKrb5Sname), "MSSQLSvc/db01");
  EXPECT_EQ(sink.inspected[1].first, Direction::kToClient);
  EXPECT_EQ(sink.krb5[1].msg_type, 13);
  EXPECT_EQ(sink.krb5[1].ticket_etype, 23);
  EXPECT_EQ(sink.inspected[1].second.at(Buffer::kKrb5Cname), "appadmin");
  EXPECT_EQ(sink.krb5[2].msg_type, 30);
  EXPECT_EQ(sink.krb5[2].error_code, 6);
  EXPECT_EQ(sink.krb5[2].ticket_etype, -1);
}

TEST(Krb5Parser, ErrorCarriesFailedRequest) {
  Krb5Parser p;
  CollectSink sink;
  FeedTcp(p, Direction::kToServer, Record(AsReq()), sink, 5);
  FeedTcp(p, Direction::kToClient, Record(KrbError(25, false)), sink, 5);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.messages[0],
            "KRB5 AS-REQ alice@CORP.LOCAL for krbtgt/CORP.LOCAL KDC_ERR_PREAUTH_REQUIRED");
  EXPECT_NE(sink.events[1].find(R"("failed_request":"KRB_AS_REQ")"), std::string::npos);
  // An error without a request before it.
  FeedTcp(p, Direction::kToClient, Record(KrbError(6, false)), sink, 5);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_NE(sink.events[2].find(R"("failed_request":"UNKNOWN")"), std::string::npos);
}

TEST(Krb5Parser, UdpAndUnansweredRequests) {
  Krb5Parser p;
  CollectSink sink;
  p.OnDatagram(Direction::kToServer, S(AsReq()), sink);
  p.OnDatagram(Direction::kToServer, S(AsReq()), sink);  // a retry: the first goes out
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.messages[0], "KRB5 AS-REQ alice@CORP.LOCAL for krbtgt/CORP.LOCAL (no response)");
  p.OnDatagram(Direction::kToClient, S(AsRep()), sink);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.types[2], "krb5");
  p.OnDatagram(Direction::kToServer, S(TgsReq()), sink);
  p.OnEnd(sink);
  ASSERT_EQ(sink.events.size(), 4u);
  EXPECT_EQ(sink.messages[3], "KRB5 TGS-REQ CORP.LOCAL for MSSQLSvc/db01 (no response)");
  // Garbage datagram.
  p.OnDatagram(Direction::kToServer, S(Bytes{1, 2, 3}), sink);
  EXPECT_EQ(sink.types.back(), "anomaly");
  EXPECT_NE(sink.events.back().find("malformed_data"), std::string::npos);
}

TEST(Krb5Parser, ApMessagesGiveNoEvents) {
  Krb5Parser p;
  CollectSink sink;
  const Bytes ap = ApReq(Ticket("R", {"kadmin", "changepw"}, 18), 18);
  p.OnDatagram(Direction::kToServer, S(ap), sink);
  p.OnDatagram(Direction::kToClient, S(ApRep()), sink);
  p.OnEnd(sink);
  EXPECT_TRUE(sink.events.empty());
}

TEST(Krb5Parser, WeakReplyEncryptionIsAnAnomaly) {
  Krb5Parser p;
  CollectSink sink;
  p.OnDatagram(Direction::kToClient, S(KdcRep(11, "bob", Ticket("R", {"krbtgt", "R"}, 18), 23)),
               sink);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_NE(sink.events[0].find(R"("encryption":"rc4-hmac","weak_encryption":true)"),
            std::string::npos);
  EXPECT_EQ(sink.types[1], "anomaly");
  EXPECT_NE(sink.events[1].find("weak_encryption"), std::string::npos);
}

TEST(Krb5Parser, LargeRecordsUseTheLateWindow) {
  // A TGS-REQ whose TGT pushes the req-body past the buffered prefix, and a TGS-REP whose ticket
  // pushes the enc-part past it.
  const Bytes req = TgsReq(6000);
  const Bytes rep = TgsRep(23, 9000);
  ASSERT_GT(req.size(), kKrb5PrefixBytes + 1000);
  std::vector<std::string> first;
  for (size_t step : {size_t{1}, size_t{13}, size_t{4096}, size_t{100000}}) {
    Krb5Parser p;
    CollectSink sink;
    FeedTcp(p, Direction::kToServer, Record(req), sink, step);
    FeedTcp(p, Direction::kToClient, Record(rep), sink, step);
    ASSERT_EQ(sink.events.size(), 2u) << step;
    EXPECT_EQ(sink.messages[0],
              "KRB5 TGS-REQ appadmin@CORP.LOCAL for MSSQLSvc/db01 rc4-hmac (weak)");
    EXPECT_NE(sink.events[0].find(R"("realm":"CORP.LOCAL","sname":"MSSQLSvc/db01")"),
              std::string::npos);
    EXPECT_NE(sink.events[1].find(R"("encryption":"aes256-cts-hmac-sha1-96")"), std::string::npos)
        << sink.events[1];
    if (first.empty()) {
      first = sink.events;
    } else {
      EXPECT_EQ(sink.events, first);
    }
  }
}

TEST(Krb5Parser, GapInsideBodyKeepsFraming) {
  Krb5Parser p;
  CollectSink sink;
  const Bytes rec = Record(TgsRep());
  p.OnData(Direction::kToClient, S(rec).first(20), sink);
  p.OnGap(Direction::kToClient, 30, sink);
  p.OnData(Direction::kToClient, S(rec).subspan(50), sink);
  EXPECT_TRUE(sink.events.empty());  // the damaged record is dropped silently
  FeedTcp(p, Direction::kToClient, Record(AsRep()), sink, 9);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find("KRB_AS_REP"), std::string::npos);
  // A gap beyond the buffered prefix and not in the late window does not hurt.
  const Bytes big = Record(TgsRep(23, 9000));
  p.OnData(Direction::kToClient, S(big).first(3000), sink);
  p.OnGap(Direction::kToClient, 2000, sink);
  p.OnData(Direction::kToClient, S(big).subspan(5000), sink);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_NE(sink.events[1].find("KRB_TGS_REP"), std::string::npos);
}

TEST(Krb5Parser, GapOverRecordMarkStopsTheDirection) {
  Krb5Parser p;
  CollectSink sink;
  const Bytes rec = Record(AsRep());
  p.OnData(Direction::kToClient, S(rec).first(2), sink);
  p.OnGap(Direction::kToClient, 10, sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.messages[0], "ANOMALY krb5 gap_lost_sync");
  p.OnData(Direction::kToClient, S(rec), sink);
  EXPECT_EQ(sink.events.size(), 1u);
  // The other direction still works.
  FeedTcp(p, Direction::kToServer, Record(AsReq()), sink, 1000);
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(Krb5Parser, BadRecordMarks) {
  for (const Bytes& mark : {Bytes{0x80, 0, 0, 10}, Bytes{0, 0, 0, 0}, Bytes{0x00, 0x20, 0, 0}}) {
    Krb5Parser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, S(mark), sink);
    ASSERT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(sink.types[0], "anomaly");
    p.OnData(Direction::kToServer, S(Record(AsReq())), sink);
    EXPECT_EQ(sink.events.size(), 1u);
  }
  // A record that is not Kerberos: an anomaly, and the next record is still read.
  Krb5Parser p;
  CollectSink sink;
  FeedTcp(p, Direction::kToServer, Record(Bytes(40, 0x41)), sink, 3);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find("malformed_data"), std::string::npos);
  FeedTcp(p, Direction::kToServer, Record(AsReq()), sink, 3);
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(Krb5Parser, SizeIsModest) { EXPECT_LT(sizeof(Krb5Parser), 8192u); }

}  // namespace
}  // namespace vigil::proto
