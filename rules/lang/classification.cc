#include "rules/lang/classification.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "rules/lang/text.h"

namespace vigil::rules {
namespace {

// Class names compare case-insensitively, as in Suricata.
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Classification Classification::Parse(std::string_view text, std::vector<std::string>* errors) {
  Classification out;
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto fail = [&](const char* why) {
      if (errors != nullptr) errors->push_back("line " + std::to_string(line_no) + ": " + why);
    };
    constexpr std::string_view kPrefix = "config classification:";
    if (line.substr(0, kPrefix.size()) != kPrefix) {
      fail("not a 'config classification:' line");
      continue;
    }
    line = line.substr(kPrefix.size());
    const size_t c1 = line.find(',');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.rfind(',');
    if (c1 == std::string_view::npos || c2 == c1) {
      fail("expected 'name,description,priority'");
      continue;
    }
    ClassType ct;
    ct.name = std::string(Trim(line.substr(0, c1)));
    ct.description = std::string(Trim(line.substr(c1 + 1, c2 - c1 - 1)));
    const std::string_view prio = Trim(line.substr(c2 + 1));
    int p = 0;
    bool ok = !prio.empty() && prio.size() <= 3;
    for (char ch : prio) {
      ok = ok && ch >= '0' && ch <= '9';
      if (ok) p = p * 10 + (ch - '0');
    }
    if (ct.name.empty() || !ok || p < 1 || p > 255) {
      fail("bad name or priority");
      continue;
    }
    ct.priority = p;
    out.Add(std::move(ct));
  }
  return out;
}

bool Classification::Load(const std::string& path, Classification* out,
                          std::vector<std::string>* errors, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = Parse(ss.str(), errors);
  return true;
}

void Classification::Add(ClassType c) {
  std::string key = Lower(c.name);
  types_[std::move(key)] = std::move(c);
}

const ClassType* Classification::Find(std::string_view name) const {
  auto it = types_.find(Lower(name));
  return it == types_.end() ? nullptr : &it->second;
}

}  // namespace vigil::rules
