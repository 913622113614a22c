// Task Scheduler decoders: .JOB files built byte by byte from MS-TSCH 2.4, .JOB files from the
// team's independent generator (tests/gen/smbgen.py job_file, in tests/unit/proto/data), and task
// XML as schtasks and impacket's atexec send it.
#include "dataplane/proto/tsch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::proto {
namespace {

using Bytes = std::vector<uint8_t>;

// ------------------------------------------------------------------------------------------------
// .JOB builders

void PutU16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void PutU32(Bytes& b, uint32_t v) {
  PutU16(b, static_cast<uint16_t>(v));
  PutU16(b, static_cast<uint16_t>(v >> 16));
}
void SetU16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

// UTF-16LE code units of a UTF-8 string (BMP and astral).
std::u16string Utf16(std::string_view s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if (c < 0xE0) {
      cp = c & 0x1F;
      n = 2;
    } else if (c < 0xF0) {
      cp = c & 0x0F;
      n = 3;
    } else {
      cp = c & 0x07;
      n = 4;
    }
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    i += n;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  }
  return out;
}

Bytes Utf16Bytes(std::string_view s, bool bom) {
  Bytes b;
  if (bom) PutU16(b, 0xFEFF);
  for (char16_t u : Utf16(s)) PutU16(b, u);
  return b;
}

// MS-TSCH 2.4.2.1: a 16-bit count of UTF-16 characters including the NUL, then the characters and
// the NUL; an empty string is a count of 0 and nothing else.
void PutJobString(Bytes& b, std::string_view s) {
  if (s.empty()) {
    PutU16(b, 0);
    return;
  }
  const std::u16string u = Utf16(s);
  PutU16(b, static_cast<uint16_t>(u.size() + 1));
  for (char16_t c : u) PutU16(b, c);
  PutU16(b, 0);
}

struct TriggerSpec {
  uint16_t begin[3] = {2024, 3, 6};  // year, month, day
  uint16_t end[3] = {0, 0, 0};
  uint16_t hour = 2, minute = 45;
  uint32_t duration = 0, interval = 0, flags = 0, type = 1;
  uint16_t specific[3] = {1, 0, 0};
};

// MS-TSCH 2.4.2.11: the 48-byte trigger.
void PutTrigger(Bytes& b, const TriggerSpec& t) {
  PutU16(b, 48);                               // Trigger Size
  PutU16(b, 0);                                // Reserved1
  for (uint16_t v : t.begin) PutU16(b, v);     // Begin Year, Month, Day
  for (uint16_t v : t.end) PutU16(b, v);       // End Year, Month, Day
  PutU16(b, t.hour);                           // Start Hour
  PutU16(b, t.minute);                         // Start Minute
  PutU32(b, t.duration);                       // Minutes Duration
  PutU32(b, t.interval);                       // Minutes Interval
  PutU32(b, t.flags);                          // Flags
  PutU32(b, t.type);                           // Trigger Type
  for (uint16_t v : t.specific) PutU16(b, v);  // TriggerSpecific0..2
  PutU16(b, 0);                                // Padding
  PutU16(b, 0);                                // Reserved2
  PutU16(b, 0);                                // Reserved3
}

struct JobSpec {
  uint16_t product_version = 0x0601;
  uint32_t priority = 0x20;
  uint32_t max_run_time_ms = 259200000;  // 72 h
  uint32_t exit_code = 0;
  uint32_t status = 0x00041300;
  uint32_t flags = 0x01000000;                              // TASK_APPLICATION_NAME
  uint16_t last_run[8] = {2024, 3, 2, 5, 14, 30, 15, 250};  // SYSTEMTIME, Tuesday
  std::string application = "C:\\Windows\\Temp\\updater.exe";
  std::string parameters = "/silent";
  std::string working_directory = "C:\\Windows\\Temp";
  std::string author = "CORP\\svc_deploy";
  std::string comment = "Nightly update check";
  Bytes user_data;
  bool reserved = true;
  std::vector<TriggerSpec> triggers = {TriggerSpec{}};
  bool signature = false;
  // Where the trigger count starts (filled in by BuildJob).
  size_t trigger_at = 0;
  size_t triggers_end = 0;
};

// MS-TSCH 2.4.1 FIXDLEN_DATA then 2.4.2 variable-length data.
Bytes BuildJob(JobSpec& s) {
  Bytes var;
  PutU16(var, 0);                                          // 2.4.2.2 Running Instance Count
  PutJobString(var, s.application);                        // 2.4.2.3
  PutJobString(var, s.parameters);                         // 2.4.2.4
  PutJobString(var, s.working_directory);                  // 2.4.2.5
  PutJobString(var, s.author);                             // 2.4.2.6
  PutJobString(var, s.comment);                            // 2.4.2.7
  PutU16(var, static_cast<uint16_t>(s.user_data.size()));  // 2.4.2.8 User Data Size
  var.insert(var.end(), s.user_data.begin(), s.user_data.end());
  if (s.reserved) {
    PutU16(var, 8);           // 2.4.2.9 Reserved Data Size
    PutU32(var, 0x80070002);  // TASKRESERVED1 Start Error
    PutU32(var, 0);           // Task Flags
  } else {
    PutU16(var, 0);
  }
  s.trigger_at = 68 + var.size();
  PutU16(var, static_cast<uint16_t>(s.triggers.size()));  // 2.4.2.10 Trigger Count
  for (const TriggerSpec& t : s.triggers) PutTrigger(var, t);
  s.triggers_end = 68 + var.size();
  if (s.signature) {  // 2.4.2.12 JOB_SIGNATURE_HEADER and the signature
    PutU16(var, 1);
    PutU16(var, 1);
    for (int i = 0; i < 64; ++i) var.push_back(static_cast<uint8_t>(0xA0 + i));
  }
  Bytes b;
  PutU16(b, s.product_version);                                              // Product Version
  PutU16(b, 1);                                                              // File Version
  for (int i = 0; i < 16; ++i) b.push_back(static_cast<uint8_t>(0x10 + i));  // Job uuid
  PutU16(b, 70);                                                             // App Name Len Offset
  PutU16(b, static_cast<uint16_t>(s.trigger_at));                            // Trigger Offset
  PutU16(b, 3);                                                              // Error Retry Count
  PutU16(b, 5);                                                              // Error Retry Interval
  PutU16(b, 10);                                                             // Idle Deadline
  PutU16(b, 10);                                                             // Idle Wait
  PutU32(b, s.priority);                                                     // Priority
  PutU32(b, s.max_run_time_ms);                                              // Maximum Run Time
  PutU32(b, s.exit_code);                                                    // Exit Code
  PutU32(b, s.status);                                                       // Status
  PutU32(b, s.flags);                                                        // Flags
  for (uint16_t v : s.last_run) PutU16(b, v);                                // SYSTEMTIME
  EXPECT_EQ(b.size(), 68u);
  b.insert(b.end(), var.begin(), var.end());
  return b;
}

std::unique_ptr<JobInfo> Job(const Bytes& b) {
  auto j = std::make_unique<JobInfo>();
  ParseJobFile(b, j.get());
  return j;
}

template <class Info>
std::string Json(const Info& info) {
  std::vector<char> buf(65536);
  JsonWriter w(buf.data(), buf.size());
  WriteTaskJson(w, info);
  EXPECT_EQ(w.depth(), 0);
  return std::string(w.view());
}

std::string Sv(std::string_view v) { return std::string(v); }

// ------------------------------------------------------------------------------------------------
// .JOB tests

TEST(TschJobFile, CompleteWithEveryTriggerType) {
  JobSpec s;
  s.signature = true;
  s.user_data = {1, 2, 3};
  s.triggers.clear();
  TriggerSpec t;
  t.type = 0;  // ONCE, with an end date and repetition
  t.end[0] = 2024;
  t.end[1] = 4;
  t.end[2] = 30;
  t.duration = 1440;
  t.interval = 15;
  t.flags = 0x1 | 0x2;  // HAS_END_DATE, KILL_AT_DURATION_END
  s.triggers.push_back(t);
  t = TriggerSpec{};
  t.type = 1;  // DAILY every 2 days
  t.specific[0] = 2;
  s.triggers.push_back(t);
  t = TriggerSpec{};
  t.type = 2;  // WEEKLY every week, Monday and Friday
  t.specific[0] = 1;
  t.specific[1] = 0x02 | 0x20;
  s.triggers.push_back(t);
  t = TriggerSpec{};
  t.type = 3;  // MONTHLYDATE days 1, 15 and 31 of January and December
  t.specific[0] = 0x4001;
  t.specific[1] = 0x4000;
  t.specific[2] = 0x801;
  s.triggers.push_back(t);
  t = TriggerSpec{};
  t.type = 4;  // MONTHLYDOW last Sunday of every month
  t.specific[0] = 5;
  t.specific[1] = 0x01;
  t.specific[2] = 0xFFF;
  s.triggers.push_back(t);
  for (uint32_t type : {5u, 6u, 7u}) {  // EVENT_ON_IDLE, AT_SYSTEMSTART, AT_LOGON
    t = TriggerSpec{};
    t.type = type;
    t.specific[0] = 0;
    t.flags = type == 7 ? 0x4 : 0;  // the logon trigger disabled
    s.triggers.push_back(t);
  }
  const Bytes b = BuildJob(s);
  const auto j = Job(b);
  ASSERT_EQ(j->status, TaskParseStatus::kOk) << j->reason;
  EXPECT_EQ(j->anomalies, 0) << j->anomaly;
  EXPECT_EQ(j->product_version, 0x0601);
  EXPECT_EQ(j->app_name_offset, 70);
  EXPECT_EQ(j->error_retry_count, 3);
  EXPECT_EQ(j->error_retry_interval, 5);
  EXPECT_EQ(j->idle_deadline, 10);
  EXPECT_EQ(j->priority, 0x20u);
  EXPECT_EQ(j->max_run_time_ms, 259200000u);
  EXPECT_EQ(j->status_code, 0x00041300u);
  EXPECT_EQ(j->last_run.year, 2024);
  EXPECT_EQ(j->last_run.millisecond, 250);
  EXPECT_EQ(Sv(j->application.view()), "C:\\Windows\\Temp\\updater.exe");
  EXPECT_EQ(Sv(j->parameters.view()), "/silent");
  EXPECT_EQ(Sv(j->working_directory.view()), "C:\\Windows\\Temp");
  EXPECT_EQ(Sv(j->author.view()), "CORP\\svc_deploy");
  EXPECT_EQ(Sv(j->comment.view()), "Nightly update check");
  EXPECT_EQ(j->user_data_size, 3);
  EXPECT_TRUE(j->has_reserved1);
  EXPECT_EQ(j->start_error, 0x80070002u);
  EXPECT_EQ(j->trigger_count, 8);
  ASSERT_EQ(j->triggers_read, 8);
  EXPECT_TRUE(j->has_signature);
  EXPECT_EQ(j->signature_version, 1);

  const TaskTrigger* tr = j->triggers;
  EXPECT_EQ(tr[0].type, TaskTriggerType::kOnce);
  EXPECT_EQ(Sv(tr[0].start.view()), "2024-03-06T02:45:00");
  EXPECT_EQ(Sv(tr[0].end.view()), "2024-04-30");
  EXPECT_EQ(tr[0].interval_min, 15u);
  EXPECT_EQ(tr[0].duration_min, 1440u);
  EXPECT_TRUE(tr[0].kill_at_duration_end);
  EXPECT_EQ(tr[1].type, TaskTriggerType::kDaily);
  EXPECT_EQ(tr[1].days_interval, 2);
  EXPECT_TRUE(tr[1].end.empty());  // no HAS_END_DATE
  EXPECT_EQ(tr[2].type, TaskTriggerType::kWeekly);
  EXPECT_EQ(tr[2].weeks_interval, 1);
  EXPECT_EQ(tr[2].weekdays, 0x22);
  EXPECT_EQ(tr[3].type, TaskTriggerType::kMonthlyDate);
  EXPECT_EQ(tr[3].month_days, 0x40004001u);
  EXPECT_EQ(tr[3].months, 0x801);
  EXPECT_EQ(tr[4].type, TaskTriggerType::kMonthlyDow);
  EXPECT_EQ(tr[4].weeks, 0x10);
  EXPECT_EQ(tr[4].weekdays, 0x01);
  EXPECT_EQ(tr[4].months, 0xFFF);
  EXPECT_EQ(tr[5].type, TaskTriggerType::kIdle);
  EXPECT_EQ(tr[6].type, TaskTriggerType::kBoot);
  EXPECT_EQ(tr[7].type, TaskTriggerType::kLogon);
  EXPECT_TRUE(tr[7].disabled);
  EXPECT_FALSE(tr[6].disabled);

  const std::string json = Json(*j);
  EXPECT_NE(json.find(R"({"type":"once","start":"2024-03-06T02:45:00","end":"2024-04-30",)"
                      R"("interval_min":15,"duration_min":1440,"kill_at_duration_end":true})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"type":"monthly_date","start":"2024-03-06T02:45:00","month_days":[1,15,)"
                      R"(31],"months":["january","december"]})"),
            std::string::npos)
      << json;
  EXPECT_NE(
      json.find(R"({"type":"monthly_dow","start":"2024-03-06T02:45:00","weekdays":["sunday"],)"
                R"("weeks":["last"],"months":["january","february","march","april","may",)"
                R"("june","july","august","september","october","november","december"]})"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"type":"weekly","start":"2024-03-06T02:45:00","weeks_interval":1,)"
                      R"("weekdays":["monday","friday"]})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"type":"logon","start":"2024-03-06T02:45:00","disabled":true})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("actions_count":1,"signed":true})"), std::string::npos) << json;
}

TEST(TschJobFile, JsonExact) {
  JobSpec s;
  s.flags = 0x01000000 | 0x200 | 0x2000;  // application name, hidden, run only if logged on
  s.exit_code = 1;
  const auto j = Job(BuildJob(s));
  ASSERT_EQ(j->status, TaskParseStatus::kOk);
  EXPECT_EQ(Json(*j),
            R"("task":{"format":"job","application":"C:\\Windows\\Temp\\updater.exe",)"
            R"("parameters":"/silent","working_directory":"C:\\Windows\\Temp",)"
            R"("author":"CORP\\svc_deploy","comment":"Nightly update check","hidden":true,)"
            R"("enabled":true,"flags":["hidden","run only if logged on","application name"],)"
            R"("status":"ready","priority":"normal","max_run_time_ms":259200000,)"
            R"("last_run":"2024-03-05T14:30:15.250","exit_code":1,)"
            R"("uuid":"13121110-1514-1716-1819-1a1b1c1d1e1f","product_version":"6.1",)"
            R"("triggers":[{"type":"daily","start":"2024-03-06T02:45:00","days_interval":1}],)"
            R"("actions_count":1})");
}

TEST(TschJobFile, StatusPriorityAndFlagNames) {
  const std::pair<uint32_t, const char*> statuses[] = {
      {0x00041300, "ready"},       {0x00041301, "running"},           {0x00041302, "disabled"},
      {0x00041303, "has not run"}, {0x00041304, "no more runs"},      {0x00041305, "not scheduled"},
      {0x00041306, "terminated"},  {0x00041307, "no valid triggers"}, {0x00041308, "event trigger"},
  };
  for (const auto& [code, name] : statuses) {
    JobSpec s;
    s.status = code;
    const auto j = Job(BuildJob(s));
    EXPECT_STREQ(JobStatusName(code), name);
    EXPECT_NE(Json(*j).find(std::string("\"status\":\"") + name + "\""), std::string::npos);
  }
  EXPECT_EQ(JobStatusName(0x80070005), nullptr);
  {
    JobSpec s;
    s.status = 0x80070005;
    EXPECT_NE(Json(*Job(BuildJob(s))).find(R"("status":"0x80070005")"), std::string::npos);
  }
  const std::pair<uint32_t, const char*> priorities[] = {
      {0x20, "normal"}, {0x40, "idle"}, {0x80, "high"}, {0x100, "realtime"}};
  for (const auto& [code, name] : priorities) {
    JobSpec s;
    s.priority = code;
    EXPECT_STREQ(JobPriorityName(code), name);
    EXPECT_NE(Json(*Job(BuildJob(s))).find(std::string("\"priority\":\"") + name + "\""),
              std::string::npos);
  }
  EXPECT_EQ(JobPriorityName(0x04000000), nullptr);
  const std::pair<uint32_t, const char*> flags[] = {
      {0x1, "interactive"},
      {0x2, "delete when done"},
      {0x4, "disabled"},
      {0x10, "start only if idle"},
      {0x20, "kill on idle end"},
      {0x40, "dont start if on batteries"},
      {0x80, "kill if going on batteries"},
      {0x100, "run only if docked"},
      {0x200, "hidden"},
      {0x400, "run if connected to internet"},
      {0x800, "restart on idle resume"},
      {0x1000, "system required"},
      {0x2000, "run only if logged on"},
      {0x01000000, "application name"},
  };
  uint32_t all = 0;
  std::string expect = R"("flags":[)";
  for (const auto& [bit, name] : flags) {
    EXPECT_STREQ(JobFlagName(bit), name);
    all |= bit;
    if (bit != 0x1) expect += ",";
    expect += std::string("\"") + name + "\"";
  }
  expect += R"(,"0x80000000"])";
  JobSpec s;
  s.flags = all | 0x80000000;
  const auto j = Job(BuildJob(s));
  const std::string json = Json(*j);
  EXPECT_NE(json.find(expect), std::string::npos) << json;
  EXPECT_NE(json.find(R"("hidden":true,"enabled":false)"), std::string::npos) << json;
  EXPECT_EQ(JobFlagName(0x8), nullptr);
  const char* types[] = {
      "once",  "daily",        "weekly", "monthly_date",         "monthly_dow", "idle", "boot",
      "logon", "registration", "event",  "session_state_change", "calendar",    "other"};
  for (size_t i = 0; i < std::size(types); ++i) {
    EXPECT_STREQ(TaskTriggerTypeName(static_cast<TaskTriggerType>(i)), types[i]);
  }
}

// Every prefix of a valid file: never a crash, never kOk (except at the end of the triggers,
// where the optional signature starts), and what is reported is a prefix of the truth.
TEST(TschJobFile, TruncatedAtEveryOffset) {
  JobSpec s;
  s.signature = true;
  s.comment = "J\xC3\xA9r\xC3\xB4me \xE6\x97\xA5\xE6\x9C\xAC";  // multi-byte characters
  s.triggers.push_back(TriggerSpec{});
  const Bytes full = BuildJob(s);
  const auto whole = Job(full);
  ASSERT_EQ(whole->status, TaskParseStatus::kOk);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    const Bytes b(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    const auto j = Job(b);
    SCOPED_TRACE(cut);
    if (cut < 68) {
      EXPECT_EQ(j->status, TaskParseStatus::kInvalid);
      EXPECT_FALSE(j->fixed_complete);
    } else if (cut == s.triggers_end) {
      EXPECT_EQ(j->status, TaskParseStatus::kOk);
      EXPECT_FALSE(j->has_signature);
    } else {
      EXPECT_EQ(j->status, TaskParseStatus::kTruncated);
      EXPECT_NE(j->reason, nullptr);
      EXPECT_EQ(j->priority, 0x20u);
    }
    for (auto [got, want] :
         {std::pair{j->application.view(), whole->application.view()},
          std::pair{j->parameters.view(), whole->parameters.view()},
          std::pair{j->working_directory.view(), whole->working_directory.view()},
          std::pair{j->author.view(), whole->author.view()},
          std::pair{j->comment.view(), whole->comment.view()}}) {
      EXPECT_TRUE(want.starts_with(got)) << got;
    }
    EXPECT_LE(j->triggers_read, 2);
    const std::string json = Json(*j);
    if (j->status == TaskParseStatus::kTruncated) {
      EXPECT_NE(json.find(R"("truncated":true)"), std::string::npos);
    }
  }
}

TEST(TschJobFile, LyingOffsetsAndCounts) {
  JobSpec s;
  Bytes b = BuildJob(s);
  {  // App Name Len Offset past the end of a complete file.
    Bytes x = b;
    SetU16(x, 20, 0xFFFF);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kInvalid);
    EXPECT_STREQ(j->reason, "app name offset beyond file");
    EXPECT_STREQ(j->anomaly, "app name offset is not 70");
    EXPECT_NE(Json(*j).find(R"("invalid":"app name offset beyond file")"), std::string::npos);
  }
  {  // Trigger Offset past the end.
    Bytes x = b;
    SetU16(x, 22, 0xFFF0);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kInvalid);
    EXPECT_STREQ(j->reason, "trigger offset beyond file");
    EXPECT_STREQ(j->anomaly, "trigger offset mismatch");
  }
  {  // Offsets inside the file but not where the fields are: anomalies only.
    Bytes x = b;
    SetU16(x, 20, 68);
    SetU16(x, 22, 100);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_EQ(j->anomalies, 2);
    EXPECT_EQ(Sv(j->application.view()), s.application);
  }
  {  // Application name count larger than the file: the characters that are there.
    Bytes x = b;
    SetU16(x, 70, 0xFFFF);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kTruncated);
    EXPECT_STREQ(j->reason, "application name cut");
    EXPECT_TRUE(j->application.view().starts_with("C:\\Windows\\Temp\\updater.exe"));
    EXPECT_EQ(j->trigger_count, 0);
  }
  {  // Trigger count 65535 with one trigger present.
    Bytes x = b;
    SetU16(x, s.trigger_at, 0xFFFF);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kTruncated);
    EXPECT_STREQ(j->reason, "trigger cut");
    EXPECT_EQ(j->trigger_count, 0xFFFF);
    EXPECT_EQ(j->triggers_read, 1);
    EXPECT_NE(Json(*j).find(R"("truncated":true,"truncated_at":"trigger cut")"), std::string::npos);
  }
  {  // More triggers than are kept: all are walked, kTaskMaxTriggers kept, flagged.
    JobSpec m;
    m.triggers.assign(20, TriggerSpec{});
    m.signature = true;
    const auto j = Job(BuildJob(m));
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_EQ(j->trigger_count, 20);
    EXPECT_EQ(j->triggers_read, kTaskMaxTriggers);
    EXPECT_TRUE(j->has_signature);
    EXPECT_NE(Json(*j).find(R"("truncated":true)"), std::string::npos);
  }
  {  // A trigger of unknown type and bad size, an invalid start date.
    JobSpec m;
    m.triggers[0].type = 9;
    m.triggers[0].begin[1] = 13;
    Bytes x = BuildJob(m);
    SetU16(x, m.trigger_at + 2, 40);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_EQ(j->anomalies, 3);
    EXPECT_EQ(j->triggers[0].type, TaskTriggerType::kOther);
    EXPECT_TRUE(j->triggers[0].start.empty());
    EXPECT_NE(Json(*j).find(R"({"type":"other","job_type":9})"), std::string::npos);
  }
  {  // Reserved data of an odd size, a NUL inside a string, a string without its NUL.
    JobSpec m;
    m.reserved = false;
    m.parameters = std::string("/a\0/hidden", 10);
    Bytes x = BuildJob(m);
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_STREQ(j->anomaly, "NUL inside string");
    EXPECT_EQ(Sv(j->parameters.view()), "/a");
  }
  {  // Bytes after the triggers that are no signature.
    Bytes x = b;
    x.insert(x.end(), {0x07, 0x00, 0x00, 0x00, 0x01});
    const auto j = Job(x);
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_STREQ(j->anomaly, "bytes after the triggers");
  }
  {  // File version other than 1.
    Bytes x = b;
    SetU16(x, 2, 2);
    EXPECT_STREQ(Job(x)->anomaly, "file version not 1");
  }
}

TEST(TschJobFile, OddLengthUtf16) {
  JobSpec s;
  const Bytes full = BuildJob(s);
  // Cut in the middle of the application name's 5th character.
  const Bytes b(full.begin(), full.begin() + 81);  // 72 + 4 characters * 2 + 1
  const auto j = Job(b);
  EXPECT_EQ(j->status, TaskParseStatus::kTruncated);
  EXPECT_EQ(Sv(j->application.view()), "C:\\W");
}

TEST(TschJobFile, StringsAtTheBoundAndBeyond) {
  {
    JobSpec s;
    s.application = std::string(512, 'a');
    s.parameters = std::string(1025, 'p');
    const auto j = Job(BuildJob(s));
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_EQ(j->application.len, 512);
    EXPECT_FALSE(j->application.truncated);
    EXPECT_EQ(j->parameters.len, 1024);
    EXPECT_TRUE(j->parameters.truncated);
    EXPECT_NE(Json(*j).find(R"("truncated":true)"), std::string::npos);
  }
  {  // Two-byte characters: 257 of them (514 bytes) are cut at 256 (512 bytes).
    JobSpec s;
    s.application.clear();
    for (int i = 0; i < 257; ++i) s.application += "\xC3\xA9";
    const auto j = Job(BuildJob(s));
    EXPECT_EQ(j->application.len, 512);
    EXPECT_TRUE(j->application.truncated);
  }
  {  // Three-byte characters: 171 of them (513 bytes) are cut at 170 (510 bytes).
    JobSpec s;
    s.application.clear();
    for (int i = 0; i < 171; ++i) s.application += "\xE6\x97\xA5";
    const auto j = Job(BuildJob(s));
    EXPECT_EQ(j->application.len, 510);
    EXPECT_TRUE(j->application.truncated);
  }
  {  // Exactly at the bound in three-byte characters: 170 fit whole.
    JobSpec s;
    s.author.clear();
    for (int i = 0; i < 85; ++i) s.author += "\xE6\x97\xA5";  // 255 bytes of 256
    const auto j = Job(BuildJob(s));
    EXPECT_EQ(j->author.len, 255);
    EXPECT_FALSE(j->author.truncated);
  }
  {  // Astral characters (surrogate pairs) decode whole.
    JobSpec s;
    s.comment = "x\xF0\x9F\x98\x80y";
    const auto j = Job(BuildJob(s));
    EXPECT_EQ(j->status, TaskParseStatus::kOk);
    EXPECT_EQ(Sv(j->comment.view()), s.comment);
  }
}

Bytes ReadFile(const std::string& name) {
  const std::string path = std::string(VIGIL_SOURCE_DIR) + "/tests/unit/proto/data/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Files from tests/gen/smbgen.py job_file (written from the same specification by someone else),
// generated with:
//   smbgen.job_file(random.Random(1), r'C:\Windows\Temp\updater.exe', '/silent /norestart',
//       r'C:\Windows\Temp', r'CORP\svc_deploy', 'Nightly update check',
//       calendar.timegm((2024, 3, 5, 14, 30, 15, 0, 0, 0)), 2, 45, (2024, 3, 6))
//   ... (2) r'C:\Windows\System32\cmd.exe', '', '', '', '', 2023-12-31 23:59:59, 23, 0, (2024,1,1)
//   ... (3) 'C:\Users\José\AppData\Roaming\日本.exe', '-enc SQBFAFgA', 'C:\Users\José', 'José',
//           'Été ☃', 2022-07-15 19:46:29, 9, 5, (2022, 7, 16)
//   ... (4) r'C:\x.exe', '', '', '', '😀', 2022-07-15 19:46:29, 9, 5, (2022, 7, 16)
// smbgen writes App Name Len Offset 68 (the Running Instance Count) where 2.4.1 says the offset
// of the application name's length (70): the parser reads the fields in their 2.4.2 order and
// flags the offset.
TEST(TschJobFile, SmbgenVectors) {
  {
    const auto j = Job(ReadFile("smbgen_job_updater.job"));
    ASSERT_EQ(j->status, TaskParseStatus::kOk) << j->reason;
    EXPECT_EQ(j->anomalies, 1);
    EXPECT_STREQ(j->anomaly, "app name offset is not 70");
    EXPECT_EQ(j->app_name_offset, 68);
    EXPECT_EQ(j->product_version, 0x0600);
    EXPECT_EQ(Sv(j->application.view()), "C:\\Windows\\Temp\\updater.exe");
    EXPECT_EQ(Sv(j->parameters.view()), "/silent /norestart");
    EXPECT_EQ(Sv(j->working_directory.view()), "C:\\Windows\\Temp");
    EXPECT_EQ(Sv(j->author.view()), "CORP\\svc_deploy");
    EXPECT_EQ(Sv(j->comment.view()), "Nightly update check");
    EXPECT_EQ(j->priority, 0x20u);
    EXPECT_EQ(j->max_run_time_ms, 72u * 3600 * 1000);
    EXPECT_EQ(j->status_code, 0x00041300u);
    EXPECT_EQ(j->idle_deadline, 10);
    EXPECT_EQ(j->idle_wait, 10);
    // 2024-03-05 14:30:15 UTC was a Tuesday (SYSTEMTIME weekday 2).
    EXPECT_EQ(j->last_run.year, 2024);
    EXPECT_EQ(j->last_run.month, 3);
    EXPECT_EQ(j->last_run.weekday, 2);
    EXPECT_EQ(j->last_run.day, 5);
    EXPECT_EQ(j->last_run.hour, 14);
    EXPECT_EQ(j->last_run.minute, 30);
    EXPECT_EQ(j->last_run.second, 15);
    EXPECT_TRUE(j->has_reserved1);
    ASSERT_EQ(j->triggers_read, 1);
    EXPECT_EQ(j->triggers[0].type, TaskTriggerType::kDaily);
    EXPECT_EQ(j->triggers[0].days_interval, 1);
    EXPECT_EQ(Sv(j->triggers[0].start.view()), "2024-03-06T02:45:00");
    EXPECT_FALSE(j->has_signature);
    const std::string json = Json(*j);
    EXPECT_NE(json.find(R"("status":"ready","priority":"normal","max_run_time_ms":259200000,)"
                        R"("last_run":"2024-03-05T14:30:15.000")"),
              std::string::npos)
        << json;
  }
  {
    const auto j = Job(ReadFile("smbgen_job_empty_strings.job"));
    ASSERT_EQ(j->status, TaskParseStatus::kOk) << j->reason;
    EXPECT_EQ(Sv(j->application.view()), "C:\\Windows\\System32\\cmd.exe");
    EXPECT_TRUE(j->parameters.empty() && j->working_directory.empty() && j->author.empty() &&
                j->comment.empty());
    EXPECT_EQ(j->last_run.weekday, 0);  // 2023-12-31 was a Sunday
    EXPECT_EQ(j->last_run.hour, 23);
    ASSERT_EQ(j->triggers_read, 1);
    EXPECT_EQ(Sv(j->triggers[0].start.view()), "2024-01-01T23:00:00");
  }
  {
    const auto j = Job(ReadFile("smbgen_job_unicode.job"));
    ASSERT_EQ(j->status, TaskParseStatus::kOk) << j->reason;
    EXPECT_EQ(Sv(j->application.view()),
              "C:\\Users\\Jos\xC3\xA9\\AppData\\Roaming\\\xE6\x97\xA5\xE6\x9C\xAC.exe");
    EXPECT_EQ(Sv(j->parameters.view()), "-enc SQBFAFgA");
    EXPECT_EQ(Sv(j->author.view()), "Jos\xC3\xA9");
    EXPECT_EQ(Sv(j->comment.view()), "\xC3\x89t\xC3\xA9 \xE2\x98\x83");
    EXPECT_EQ(j->last_run.weekday, 5);  // 2022-07-15 was a Friday
    ASSERT_EQ(j->triggers_read, 1);
    EXPECT_EQ(Sv(j->triggers[0].start.view()), "2022-07-16T09:05:00");
  }
  {
    // smbgen counts characters with Python's len(), so a string with a character outside the
    // BMP (two UTF-16 code units) gets a count one too small: the NUL is left over and every
    // field after it shifts. 2.4.2.1 counts UTF-16 characters; the parser sees the string
    // without its NUL and the shifted rest.
    const auto j = Job(ReadFile("smbgen_job_astral.job"));
    EXPECT_EQ(Sv(j->comment.view()), "\xF0\x9F\x98\x80");
    EXPECT_GE(j->anomalies, 2);
    EXPECT_TRUE(j->status != TaskParseStatus::kOk || j->triggers_read != 1 ||
                j->triggers[0].type != TaskTriggerType::kDaily);
  }
}

// ------------------------------------------------------------------------------------------------
// Task XML

std::unique_ptr<TaskXmlInfo> Xml(std::string_view text, bool utf16, bool bom = false) {
  auto x = std::make_unique<TaskXmlInfo>();
  if (utf16) {
    const Bytes b = Utf16Bytes(text, bom);
    ParseTaskXml(b, true, x.get());
  } else {
    ParseTaskXml({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, false, x.get());
  }
  return x;
}

// As `schtasks /create /xml` and the Task Scheduler UI export it (UTF-16LE, BOM).
constexpr std::string_view kSchtasksXml =
    R"(<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Date>2024-03-05T14:30:15.1234567</Date>
    <Author>CORP\svc_deploy</Author>
    <Description>Sophos &amp; friends: nightly update</Description>
    <URI>\Sophos\Update</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <Repetition>
        <Interval>PT30M</Interval>
        <Duration>P1D</Duration>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <StartBoundary>2024-03-06T02:45:00</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByWeek>
        <DaysOfWeek>
          <Monday />
          <Friday />
        </DaysOfWeek>
        <WeeksInterval>2</WeeksInterval>
      </ScheduleByWeek>
    </CalendarTrigger>
    <LogonTrigger>
      <Enabled>false</Enabled>
      <UserId>CORP\alice</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>true</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>true</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>false</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>true</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>PT72H</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>"C:\Program Files\Sophos\AutoUpdate\ALUpdate.exe"</Command>
      <Arguments>-ScheduledUpdate</Arguments>
      <WorkingDirectory>C:\Program Files\Sophos</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
)";

// impacket's atexec.py registers this through SchRpcRegisterTask (UTF-16 on the wire, no BOM).
constexpr std::string_view kAtexecXml =
    R"(<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>2015-07-15T20:35:13.2757294</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay>
        <DaysInterval>1</DaysInterval>
      </ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Principals>
    <Principal id="LocalSystem">
      <UserId>S-1-5-18</UserId>
      <RunLevel>HighestAvailable</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>true</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>true</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <WakeToRun>false</WakeToRun>
    <ExecutionTimeLimit>P3D</ExecutionTimeLimit>
    <Priority>7</Priority>
  </Settings>
  <Actions Context="LocalSystem">
    <Exec>
      <Command>cmd.exe</Command>
      <Arguments>/C whoami &gt; %windir%\Temp\dJkQxLmN.tmp 2&gt;&amp;1</Arguments>
    </Exec>
  </Actions>
</Task>
)";

TEST(TschTaskXml, SchtasksUtf16WithBom) {
  const auto x = Xml(kSchtasksXml, true, true);
  ASSERT_EQ(x->status, TaskParseStatus::kOk) << x->reason;
  EXPECT_EQ(x->anomalies, 0) << x->anomaly;
  EXPECT_TRUE(x->utf16);
  EXPECT_EQ(Sv(x->author.view()), "CORP\\svc_deploy");
  EXPECT_EQ(Sv(x->description.view()), "Sophos & friends: nightly update");
  EXPECT_EQ(Sv(x->uri.view()), "\\Sophos\\Update");
  EXPECT_EQ(Sv(x->date.view()), "2024-03-05T14:30:15.1234567");
  EXPECT_EQ(Sv(x->user_id.view()), "S-1-5-18");  // not the LogonTrigger's UserId
  EXPECT_EQ(Sv(x->run_level.view()), "HighestAvailable");
  EXPECT_EQ(x->hidden, TaskBool::kFalse);
  EXPECT_EQ(x->enabled, TaskBool::kTrue);
  EXPECT_EQ(x->trigger_count, 2);
  ASSERT_EQ(x->triggers_read, 2);
  EXPECT_EQ(x->triggers[0].type, TaskTriggerType::kWeekly);
  EXPECT_EQ(x->triggers[0].weeks_interval, 2);
  EXPECT_EQ(x->triggers[0].weekdays, 0x22);
  EXPECT_EQ(x->triggers[0].interval_min, 30u);
  EXPECT_EQ(x->triggers[0].duration_min, 1440u);
  EXPECT_FALSE(x->triggers[0].disabled);
  EXPECT_EQ(x->triggers[1].type, TaskTriggerType::kLogon);
  EXPECT_TRUE(x->triggers[1].disabled);
  EXPECT_EQ(x->actions_count, 1);
  ASSERT_EQ(x->execs_read, 1);
  EXPECT_EQ(Sv(x->execs[0].command.view()),
            "\"C:\\Program Files\\Sophos\\AutoUpdate\\ALUpdate.exe\"");
  EXPECT_EQ(Sv(x->execs[0].arguments.view()), "-ScheduledUpdate");
  EXPECT_EQ(Sv(x->execs[0].working_directory.view()), "C:\\Program Files\\Sophos");
  // Same in UTF-8, and in UTF-16 without the BOM.
  for (const auto& y : {Xml(kSchtasksXml, false), Xml(kSchtasksXml, true, false)}) {
    EXPECT_EQ(y->status, TaskParseStatus::kOk);
    EXPECT_EQ(Json(*y), Json(*x));
  }
}

TEST(TschTaskXml, AtexecJsonExact) {
  const auto x = Xml(kAtexecXml, true);
  ASSERT_EQ(x->status, TaskParseStatus::kOk) << x->reason;
  EXPECT_EQ(Json(*x),
            R"("task":{"format":"xml","application":"cmd.exe",)"
            R"("parameters":"/C whoami > %windir%\\Temp\\dJkQxLmN.tmp 2>&1",)"
            R"("user":"S-1-5-18","run_level":"HighestAvailable","hidden":true,"enabled":true,)"
            R"("triggers":[{"type":"daily","start":"2015-07-15T20:35:13.2757294",)"
            R"("days_interval":1}],)"
            R"("actions":[{"type":"exec","command":"cmd.exe",)"
            R"("arguments":"/C whoami > %windir%\\Temp\\dJkQxLmN.tmp 2>&1"}],"actions_count":1})");
  // The RPC string is NUL-terminated: what follows the NUL is not read.
  Bytes b = Utf16Bytes(kAtexecXml, false);
  b.insert(b.end(), {0, 0, '<', 0, 'x', 0});
  TaskXmlInfo y;
  ParseTaskXml(b, true, &y);
  EXPECT_EQ(y.status, TaskParseStatus::kOk);
  EXPECT_EQ(Json(y), Json(*x));
}

TEST(TschTaskXml, EntitiesCdataCommentsPrefixes) {
  const auto x =
      Xml("\xEF\xBB\xBF<?xml version='1.0'?>\n"
          "<!DOCTYPE t:Task [ <!ENTITY x \"<Task>\"> ]>\n"
          "<!-- <Task><Actions><Exec><Command>fake.exe</Command></Exec></Actions></Task> -->\n"
          "<t:Task xmlns:t='http://schemas.microsoft.com/windows/2004/02/mit/task'>"
          "<t:RegistrationInfo><t:Author>a&lt;b&gt;c&quot;d&apos;e&#65;&#x42;&#x1F600;&#xe9;"
          "</t:Author><t:Description><![CDATA[<not a tag> & not an entity]]> tail</t:Description>"
          "</t:RegistrationInfo>"
          "<t:Actions><t:Exec><t:Command> <!-- c --> powershell.exe\n</t:Command>"
          "<t:Arguments attr=\"x>y\">-nop &amp;&amp; &bogus; &#xD800; -w hidden</t:Arguments>"
          "</t:Exec></t:Actions></t:Task>",
          false);
  ASSERT_EQ(x->status, TaskParseStatus::kOk) << x->reason;
  EXPECT_EQ(Sv(x->author.view()), "a<b>c\"d'eAB\xF0\x9F\x98\x80\xC3\xA9");
  EXPECT_EQ(Sv(x->description.view()), "<not a tag> & not an entity tail");
  ASSERT_EQ(x->execs_read, 1);
  EXPECT_EQ(Sv(x->execs[0].command.view()), "powershell.exe");
  EXPECT_EQ(Sv(x->execs[0].arguments.view()), "-nop && &bogus; \xEF\xBF\xBD -w hidden");
  EXPECT_EQ(x->anomalies, 2);  // &bogus; and &#xD800;
}

TEST(TschTaskXml, SeveralActions) {
  std::string s = "<Task><Actions>";
  for (int i = 0; i < 6; ++i) {
    s += "<Exec><Command>c" + std::to_string(i) + ".exe</Command><Arguments>a" + std::to_string(i) +
         "</Arguments></Exec>";
  }
  s += "<ComHandler><ClassId>{0F87369F-A4E5-4CFC-BD3E-73E6154572DD}</ClassId><Data>x</Data>"
       "</ComHandler><ComHandler><ClassId>{second}</ClassId></ComHandler>"
       "<SendEmail><Server>x</Server></SendEmail><ShowMessage/></Actions></Task>";
  const auto x = Xml(s, false);
  ASSERT_EQ(x->status, TaskParseStatus::kOk) << x->reason;
  EXPECT_EQ(x->actions_count, 10);
  EXPECT_EQ(x->exec_count, 6);
  EXPECT_EQ(x->com_handler_count, 2);
  ASSERT_EQ(x->execs_read, kTaskMaxExecActions);
  EXPECT_EQ(Sv(x->execs[3].command.view()), "c3.exe");
  EXPECT_EQ(Sv(x->execs[3].arguments.view()), "a3");
  EXPECT_EQ(Sv(x->com_class_id.view()), "{0F87369F-A4E5-4CFC-BD3E-73E6154572DD}");
  const std::string json = Json(*x);
  EXPECT_NE(
      json.find(R"({"type":"com_handler","class_id":"{0F87369F-A4E5-4CFC-BD3E-73E6154572DD}"}],)"
                R"("actions_count":10,"truncated":true})"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("application":"c0.exe","parameters":"a0")"), std::string::npos);
}

TEST(TschTaskXml, CalendarSchedulesAndOtherTriggers) {
  const auto x = Xml(
      "<Task><Triggers>"
      "<CalendarTrigger><StartBoundary>2024-01-01T00:00:00Z</StartBoundary><ScheduleByMonth>"
      "<DaysOfMonth><Day>1</Day><Day>15</Day><Day>Last</Day></DaysOfMonth>"
      "<Months><January/><July/></Months></ScheduleByMonth></CalendarTrigger>"
      "<CalendarTrigger><ScheduleByMonthDayOfWeek><Weeks><Week>2</Week><Week>Last</Week></Weeks>"
      "<DaysOfWeek><Sunday/></DaysOfWeek><Months><December/></Months>"
      "</ScheduleByMonthDayOfWeek></CalendarTrigger>"
      "<TimeTrigger><StartBoundary>2024-05-01T10:00:00</StartBoundary>"
      "<EndBoundary>2024-06-01T10:00:00</EndBoundary><Repetition><Interval>P1DT2H5M30S</Interval>"
      "<StopAtDurationEnd>true</StopAtDurationEnd></Repetition></TimeTrigger>"
      "<BootTrigger/><IdleTrigger/><RegistrationTrigger/><EventTrigger><Subscription>&lt;Q/&gt;"
      "</Subscription></EventTrigger><SessionStateChangeTrigger/><WnfStateChangeTrigger/>"
      "</Triggers></Task>",
      false);
  ASSERT_EQ(x->status, TaskParseStatus::kOk) << x->reason;
  EXPECT_EQ(x->trigger_count, 9);
  ASSERT_EQ(x->triggers_read, 8);
  const TaskTrigger* t = x->triggers;
  EXPECT_EQ(t[0].type, TaskTriggerType::kMonthlyDate);
  EXPECT_EQ(t[0].month_days, 0x80004001u);
  EXPECT_EQ(t[0].months, 0x41);
  EXPECT_EQ(t[1].type, TaskTriggerType::kMonthlyDow);
  EXPECT_EQ(t[1].weeks, 0x12);
  EXPECT_EQ(t[1].weekdays, 0x01);
  EXPECT_EQ(t[1].months, 0x800);
  EXPECT_EQ(t[2].type, TaskTriggerType::kOnce);
  EXPECT_EQ(t[2].interval_min, 1440u + 125);
  EXPECT_TRUE(t[2].kill_at_duration_end);
  EXPECT_EQ(Sv(t[2].end.view()), "2024-06-01T10:00:00");
  EXPECT_EQ(t[3].type, TaskTriggerType::kBoot);
  EXPECT_EQ(t[4].type, TaskTriggerType::kIdle);
  EXPECT_EQ(t[5].type, TaskTriggerType::kRegistration);
  EXPECT_EQ(t[6].type, TaskTriggerType::kEvent);
  EXPECT_EQ(t[7].type, TaskTriggerType::kSessionStateChange);
  const std::string json = Json(*x);
  EXPECT_NE(json.find(R"({"type":"monthly_date","start":"2024-01-01T00:00:00Z","month_days":[1,)"
                      R"(15],"last_day_of_month":true,"months":["january","july"]})"),
            std::string::npos)
      << json;
}

TEST(TschTaskXml, MissingElements) {
  {
    const auto x = Xml("<Task/>", false);
    EXPECT_EQ(x->status, TaskParseStatus::kOk);
    EXPECT_EQ(Json(*x), R"("task":{"format":"xml","actions_count":0})");
  }
  {
    const auto x = Xml("<Job><Command>x</Command></Job>", false);
    EXPECT_EQ(x->status, TaskParseStatus::kInvalid);
    EXPECT_STREQ(x->reason, "no Task element");
    EXPECT_NE(Json(*x).find(R"("invalid":"no Task element")"), std::string::npos);
  }
  {
    const auto x = Xml("", true);
    EXPECT_EQ(x->status, TaskParseStatus::kInvalid);
  }
  {  // Exec without Command; Settings with a bad boolean.
    const auto x =
        Xml("<Task><Settings><Hidden>yes</Hidden></Settings><Actions><Exec><Arguments>x</Arguments>"
            "</Exec></Actions></Task>",
            false);
    EXPECT_EQ(x->status, TaskParseStatus::kOk);
    EXPECT_EQ(x->hidden, TaskBool::kAbsent);
    EXPECT_STREQ(x->anomaly, "bad boolean");
    EXPECT_EQ(x->exec_count, 1);
    EXPECT_TRUE(x->execs[0].command.empty());
  }
}

TEST(TschTaskXml, UnterminatedAndMismatched) {
  for (const char* text :
       {"<Task><Actions><Exec><Command>cmd.exe", "<Task><Actions", "<Task attr=\"x>",
        "<Task><!-- x", "<Task><![CDATA[x", "<Task><?pi", "<Task></Task", "<Task><!DOCTYPE x"}) {
    const auto x = Xml(text, false);
    EXPECT_EQ(x->status, TaskParseStatus::kTruncated) << text;
    EXPECT_NE(x->reason, nullptr);
  }
  {  // A missing end tag is closed by its parent's.
    const auto x = Xml("<Task><Actions><Exec><Command>a.exe</Exec></Actions></Task>", false);
    EXPECT_EQ(x->status, TaskParseStatus::kOk);
    EXPECT_STREQ(x->anomaly, "mismatched end tag");
    EXPECT_EQ(Sv(x->execs[0].command.view()), "a.exe");
  }
  {
    const auto x = Xml("<Task></Nope><Foo></Bar></Foo></Task>", false);
    EXPECT_EQ(x->status, TaskParseStatus::kOk);
    EXPECT_EQ(x->anomalies, 2);
  }
}

TEST(TschTaskXml, TruncatedAtEveryOffset) {
  for (bool utf16 : {false, true}) {
    const Bytes full =
        utf16 ? Utf16Bytes(kAtexecXml, true) : Bytes(kAtexecXml.begin(), kAtexecXml.end());
    TaskXmlInfo whole;
    ParseTaskXml(full, utf16, &whole);
    ASSERT_EQ(whole.status, TaskParseStatus::kOk);
    const std::string_view end_tag = "</Task>";
    const size_t task_end =
        (kAtexecXml.find(end_tag) + end_tag.size()) * (utf16 ? 2 : 1) + (utf16 ? 2 : 0);
    TaskXmlInfo x;
    for (size_t cut = 0; cut < full.size(); ++cut) {
      SCOPED_TRACE(cut);
      ParseTaskXml(std::span<const uint8_t>(full).first(cut), utf16, &x);
      if (cut >= task_end) {
        EXPECT_EQ(x.status, TaskParseStatus::kOk);
      } else {
        EXPECT_NE(x.status, TaskParseStatus::kOk);
      }
      if (x.execs_read == 1) {
        EXPECT_TRUE(whole.execs[0].command.view().starts_with(x.execs[0].command.view()));
        EXPECT_TRUE(whole.execs[0].arguments.view().starts_with(x.execs[0].arguments.view()));
      }
      EXPECT_TRUE(whole.user_id.view().starts_with(x.user_id.view()));
      Json(x);
    }
  }
}

TEST(TschTaskXml, OddLengthUtf16) {
  Bytes b =
      Utf16Bytes("<Task><RegistrationInfo><Author>ab</Author></RegistrationInfo></Task>", true);
  b.push_back('x');
  TaskXmlInfo x;
  ParseTaskXml(b, true, &x);
  EXPECT_EQ(x.status, TaskParseStatus::kOk);
  EXPECT_STREQ(x.anomaly, "odd-length UTF-16");
  EXPECT_EQ(Sv(x.author.view()), "ab");
  // Lone surrogates become U+FFFD.
  Bytes c = Utf16Bytes("<Task><RegistrationInfo><Author>", false);
  PutU16(c, 0xDC00);
  PutU16(c, 0xD800);
  const Bytes tail = Utf16Bytes("</Author></RegistrationInfo></Task>", false);
  c.insert(c.end(), tail.begin(), tail.end());
  ParseTaskXml(c, true, &x);
  EXPECT_EQ(Sv(x.author.view()), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TschTaskXml, NestingTooDeep) {
  std::string s = "<Task>";
  for (int i = 0; i < 40; ++i) s += "<a>";
  for (int i = 0; i < 40; ++i) s += "</a>";
  s += "</Task>";
  const auto x = Xml(s, false);
  EXPECT_EQ(x->status, TaskParseStatus::kInvalid);
  EXPECT_STREQ(x->reason, "nesting too deep");
  std::string ok = "<Task>";
  for (int i = 0; i < 31; ++i) ok += "<a>";
  for (int i = 0; i < 31; ++i) ok += "</a>";
  ok += "</Task>";
  EXPECT_EQ(Xml(ok, false)->status, TaskParseStatus::kOk);
}

TEST(TschTaskXml, GiantInput) {
  {  // A 3 MiB description and argument list: cut at their bounds.
    std::string s = "<Task><RegistrationInfo><Description>";
    s += std::string(size_t{3} << 20, 'd');
    s += "</Description></RegistrationInfo><Actions><Exec><Command>x</Command><Arguments>";
    for (int i = 0; i < 100000; ++i) s += "&amp;\xC3\xA9";
    s += "</Arguments></Exec></Actions></Task>";
    const auto x = Xml(s, false);
    EXPECT_EQ(x->status, TaskParseStatus::kOk);
    EXPECT_EQ(x->description.len, 512);
    EXPECT_TRUE(x->description.truncated);
    EXPECT_EQ(x->execs[0].arguments.len, 1024);  // 341 "&é" and one more "&"
    EXPECT_TRUE(x->execs[0].arguments.view().ends_with("\xC3\xA9&"));
    EXPECT_TRUE(x->execs[0].arguments.truncated);
    EXPECT_NE(Json(*x).find(R"("truncated":true)"), std::string::npos);
  }
  {  // Beyond 4 MiB is not read.
    std::string s = "<Task>";
    s += std::string((size_t{4} << 20) + 100, ' ');
    s += "</Task>";
    const auto x = Xml(s, false);
    EXPECT_EQ(x->status, TaskParseStatus::kTruncated);
    EXPECT_STREQ(x->reason, "elements left open");
  }
  {
    std::string s = "<Task></Task>";
    s += std::string((size_t{4} << 20) + 100, ' ');
    const auto x = Xml(s, false);
    EXPECT_EQ(x->status, TaskParseStatus::kTruncated);
    EXPECT_STREQ(x->reason, "input beyond 4 MiB not read");
  }
}

TEST(TschTaskXml, SmallJsonBufferStaysBalanced) {
  const auto x = Xml(kSchtasksXml, true, true);
  for (size_t cap = 0; cap < 600; cap += 7) {
    std::vector<char> buf(cap + 1);
    JsonWriter w(buf.data(), cap);
    WriteTaskJson(w, *x);
    EXPECT_EQ(w.depth(), 0);
  }
}

}  // namespace
}  // namespace vigil::proto
