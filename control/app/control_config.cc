#include "control/app/control_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "control/respond/cidr.h"

namespace vigil::ctl {

std::string ControlConfigError::ToString() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!field.empty()) s += field + ": ";
  return s + message;
}

namespace {

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) { config_.source_file = file_; }

  ControlConfigResult Load(const std::string& yaml, const std::string& key = "") {
    ControlConfigResult r;
    text_ = &yaml;
    prefix_ = key;
    try {
      const YAML::Node doc = YAML::Load(yaml);
      const YAML::Node root = key.empty() || !doc.IsMap() ? doc : doc[key];
      if (!key.empty() && (!doc.IsMap() || !root)) {
        Error(doc, key, "required key missing");
      } else if (root.IsNull()) {
        // An empty file is all defaults.
      } else if (!root.IsMap()) {
        Error(root, "", "expected a map of settings");
      } else {
        Root(root);
      }
    } catch (const YAML::Exception& e) {
      errors_.push_back({file_, e.mark.line + 1, e.mark.column + 1, "", e.msg});
    }
    if (errors_.empty()) r.config = config_;
    r.errors = std::move(errors_);
    return r;
  }

 private:
  using Setter = std::function<void(const YAML::Node&, const std::string&)>;

  void Error(const YAML::Node& n, const std::string& field, const std::string& msg) {
    const YAML::Mark m = n.Mark();
    errors_.push_back(
        {file_, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, field, msg});
  }

  void Map(const YAML::Node& node, const std::string& path_in,
           const std::map<std::string, Setter>& keys) {
    const std::string path = path_in.empty() ? prefix_ : path_in;
    if (!node.IsMap()) {
      Error(node, path, "expected a map");
      return;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const std::string field = path.empty() ? key : path + "." + key;
      auto it = keys.find(key);
      if (it == keys.end()) {
        std::string known;
        for (const auto& [k, v] : keys) known += (known.empty() ? "" : ", ") + k;
        Error(kv.first, field, "unknown key (expected one of: " + known + ")");
        continue;
      }
      it->second(kv.second, field);
    }
  }

  Setter Str(std::string* out, bool allow_empty) {
    return [this, out, allow_empty](const YAML::Node& n, const std::string& f) {
      if (!n.IsScalar() && !(allow_empty && n.IsNull())) {
        Error(n, f, "expected a string");
        return;
      }
      const std::string v = n.IsNull() ? "" : n.Scalar();
      if (v.empty() && !allow_empty) {
        Error(n, f, "must not be empty");
        return;
      }
      *out = v;
    };
  }

  template <typename T>
  Setter Uint(T* out, uint64_t lo, uint64_t hi) {
    return [this, out, lo, hi](const YAML::Node& n, const std::string& f) {
      const std::string s = n.IsScalar() ? n.Scalar() : "";
      char* end = nullptr;
      const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
      if (s.empty() || s[0] == '-' || *end != '\0') {
        Error(n, f, "expected an unsigned integer, got " + (s.empty() ? "a non-scalar" : s));
      } else if (v < lo || v > hi) {
        Error(n, f, "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + s);
      } else {
        *out = static_cast<T>(v);
      }
    };
  }

  Setter Bool(bool* out) {
    return [this, out](const YAML::Node& n, const std::string& f) {
      const std::string s = n.IsScalar() ? n.Scalar() : "";
      if (s == "true") {
        *out = true;
      } else if (s == "false") {
        *out = false;
      } else {
        Error(n, f, "expected true or false, got " + (s.empty() ? "a non-scalar" : s));
      }
    };
  }

  // A list of CIDRs ("10.0.0.0/8", "fd00::/8", "10.0.0.53"); each bad one is an error of its
  // own, named by its index.
  Setter CidrList(std::vector<std::string>* out) {
    return [this, out](const YAML::Node& n, const std::string& f) {
      if (n.IsNull()) {
        out->clear();
        return;
      }
      if (!n.IsSequence()) {
        Error(n, f, "expected a list of CIDRs (10.0.0.0/8, fd00::/8, 10.0.0.53)");
        return;
      }
      out->clear();
      for (size_t i = 0; i < n.size(); ++i) {
        const std::string field = f + "[" + std::to_string(i) + "]";
        if (!n[i].IsScalar()) {
          Error(n[i], field, "expected a CIDR");
          continue;
        }
        std::string e;
        if (!respond::ParseCidr(n[i].Scalar(), &e)) {
          Error(n[i], field, e);
          continue;
        }
        out->push_back(n[i].Scalar());
      }
    };
  }

  void Root(const YAML::Node& root) {
    ControlConfig& c = config_;
    Map(root, "",
        {
            {"data_dir", Str(&c.data_dir, false)},
            {"event_socket", Str(&c.event_socket, false)},
            {"models_dir", Str(&c.models_dir, true)},
            {"models", [&](const YAML::Node& n, const std::string& f) { Models(n, f); }},
            {"files_dir", Str(&c.files_dir, true)},
            {"api",
             [&](const YAML::Node& n, const std::string& f) {
               Map(n, f,
                   {{"listen", Str(&c.api_listen, true)},
                    {"socket", Str(&c.api_socket, true)},
                    {"token_file", Str(&c.api_token_file, true)}});
             }},
            {"respond",
             [&](const YAML::Node& n, const std::string& f) {
               Map(n, f,
                   {{"enabled", Bool(&c.respond.enabled)},
                    {"dataplane_socket", Str(&c.respond.dataplane_socket, false)},
                    {"never_block", CidrList(&c.respond.never_block)},
                    {"allow", CidrList(&c.respond.allow)}});
             }},
            {"retention",
             [&](const YAML::Node& n, const std::string& f) {
               Map(n, f,
                   {{"days", Uint(&c.retention_days, 1, 36500)},
                    {"max_mb", Uint(&c.retention_max_mb, 0, uint64_t{1} << 40)}});
             }},
        });
    if (!c.api_listen.empty() && c.api_listen.rfind("127.", 0) != 0 &&
        c.api_listen.rfind("localhost:", 0) != 0) {
      Error(root["api"]["listen"], Field("api.listen"),
            "must be a loopback address (remote access needs a token and TLS, not built yet)");
    }
  }

  std::string Field(const std::string& f) const { return prefix_.empty() ? f : prefix_ + "." + f; }

  // models: a list of model maps. Each is cut out of the document text (its own lines, the
  // first one's "- " blanked) and padded with the lines before it, so that the model parser's
  // errors carry the document's line and column.
  void Models(const YAML::Node& n, const std::string& f) {
    if (!n.IsSequence()) {
      Error(n, f, "expected a list of models (maps with name, components, ...)");
      return;
    }
    std::vector<std::string> lines;
    for (size_t start = 0; start <= text_->size();) {
      const size_t nl = text_->find('\n', start);
      const size_t end = nl == std::string::npos ? text_->size() : nl;
      lines.push_back(text_->substr(start, end - start));
      start = end + 1;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node& m = n[i];
      const YAML::Mark mark = m.Mark();
      if (!m.IsMap() || mark.line < 0 || static_cast<size_t>(mark.line) >= lines.size() ||
          m.Style() == YAML::EmitterStyle::Flow) {
        Error(m, f + "[" + std::to_string(i) + "]", "expected a model written as a block map");
        continue;
      }
      const size_t first = static_cast<size_t>(mark.line);
      const size_t col = static_cast<size_t>(mark.column);
      std::string text(first, '\n');
      std::string head = lines[first];
      for (size_t k = 0; k < col && k < head.size(); ++k) head[k] = ' ';
      text += head + "\n";
      for (size_t l = first + 1; l < lines.size(); ++l) {
        const std::string& line = lines[l];
        const size_t indent = line.find_first_not_of(' ');
        if (indent != std::string::npos && line[indent] != '#' && indent < col) break;
        text += line + "\n";
      }
      config_.models.push_back({std::move(text)});
    }
  }

  const std::string* text_ = nullptr;
  std::string prefix_;
  std::string file_;
  ControlConfig config_;
  std::vector<ControlConfigError> errors_;
};

}  // namespace

ControlConfigResult LoadControlConfigString(const std::string& yaml, const std::string& name) {
  return Loader(name).Load(yaml);
}

ControlConfigResult LoadControlConfigSection(const std::string& yaml, const std::string& name,
                                             const std::string& key) {
  return Loader(name).Load(yaml, key);
}

std::vector<std::string> ControlRestartOnlyChanges(const ControlConfig& a, const ControlConfig& b) {
  std::vector<std::string> out;
  auto check = [&](bool same, const char* field) {
    if (!same) out.emplace_back(field);
  };
  check(a.data_dir == b.data_dir, "data_dir");
  check(a.event_socket == b.event_socket, "event_socket");
  check(a.files_dir == b.files_dir, "files_dir");
  check(a.api_listen == b.api_listen && a.api_socket == b.api_socket &&
            a.api_token_file == b.api_token_file,
        "api");
  check(a.respond.dataplane_socket == b.respond.dataplane_socket, "respond.dataplane_socket");
  ControlConfig hot = a;  // a setting added later without a line above counts as restart-only
  hot.source_file = b.source_file;
  hot.models_dir = b.models_dir;
  hot.models = b.models;
  hot.retention_days = b.retention_days;
  hot.retention_max_mb = b.retention_max_mb;
  hot.respond.enabled = b.respond.enabled;
  hot.respond.never_block = b.respond.never_block;
  hot.respond.allow = b.respond.allow;
  if (out.empty() && !(hot == b)) out.emplace_back("(a setting not listed above)");
  return out;
}

ControlConfigResult LoadControlConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ControlConfigResult r;
    r.errors.push_back({path, 0, 0, "", "cannot read the file"});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Loader(path).Load(ss.str());
}

}  // namespace vigil::ctl
