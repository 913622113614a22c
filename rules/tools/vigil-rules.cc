// vigil-rules: checks Suricata/Snort rule files against vigil's signature language.
//   vigil-rules check [--vars FILE.yaml] [--classification FILE] [--verbose]
//                     [--compile [--cache DIR]] RULEFILE...
// Prints "N loaded, M rejected: K by keyword byte_test, ..."; with --verbose also every rejection
// as "file:line: sid N: keyword: reason"; with --compile also builds the signature engine
// (rules/engine) from the loaded rules and prints its numbers (with --cache, through the
// database cache in DIR). Exit status 0 when it ran (rejections are not
// failures), 2 on a usage or I/O error. Without --classification, classification.config next to
// the first rule file is used when present; without --vars, Suricata's defaults.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "rules/engine/detect.h"
#include "rules/lang/classification.h"
#include "rules/lang/loader.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: vigil-rules check [--vars FILE.yaml] [--classification FILE] [--verbose] "
               "[--compile [--cache DIR]] RULEFILE...\n");
  return 2;
}

int Check(int argc, char** argv) {
  using vigil::rules::Classification;
  std::string vars_path;
  std::string class_path;
  std::string cache_dir;
  bool verbose = false, compile = false;
  std::vector<std::string> files;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--vars" || a == "--classification" || a == "--cache") && i + 1 < argc) {
      (a == "--vars" ? vars_path : a == "--cache" ? cache_dir : class_path) = argv[++i];
    } else if (a == "--compile") {
      compile = true;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (!a.empty() && a[0] == '-') {
      return Usage();
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) return Usage();

  vigil::rules::Vars vars = vigil::rules::DefaultVars();
  std::string error;
  if (!vars_path.empty() && !vigil::rules::LoadVarsYaml(vars_path, &vars, &error)) {
    std::fprintf(stderr, "vigil-rules: %s\n", error.c_str());
    return 2;
  }
  if (class_path.empty()) {
    const auto beside = std::filesystem::path(files[0]).parent_path() / "classification.config";
    std::error_code ec;
    if (std::filesystem::exists(beside, ec)) class_path = beside.string();
  }
  Classification classification;
  const Classification* cls = nullptr;
  if (!class_path.empty()) {
    std::vector<std::string> warnings;
    if (!Classification::Load(class_path, &classification, &warnings, &error)) {
      std::fprintf(stderr, "vigil-rules: %s\n", error.c_str());
      return 2;
    }
    for (const auto& w : warnings) std::fprintf(stderr, "%s: %s\n", class_path.c_str(), w.c_str());
    cls = &classification;
  }
  auto result = vigil::rules::LoadRules(files, vars, cls);
  for (const auto& e : result.errors) std::fprintf(stderr, "vigil-rules: %s\n", e.c_str());
  if (verbose) {
    for (const auto& r : result.rejections) std::printf("%s\n", r.ToString().c_str());
    std::printf("%zu commented-out rules skipped\n", result.disabled);
  }
  std::printf("%s\n", vigil::rules::Summary(result).c_str());
  if (compile) {
    vigil::rules::DetectorStats st;
    const auto det = vigil::rules::Detector::Build(std::move(result.rules), &error, &st, cache_dir);
    if (det == nullptr) {
      std::fprintf(stderr, "vigil-rules: compile: %s\n", error.c_str());
      return 2;
    }
    std::printf(
        "compiled: %zu rules (%zu with a fast pattern, %zu checked on every inspection), %zu fast "
        "patterns in %zu databases (%zu header groups), %zu stream rules, %zu pcres, %zu flowbits, "
        "%.1f MB, %s in %.0f ms\n",
        st.rules, st.prefiltered, st.always, st.patterns, st.databases, st.header_groups,
        st.stream_rules, st.pcres, st.flowbits, st.database_bytes / 1e6,
        st.from_cache ? "loaded from the cache" : "compiled", st.build_ms);
    for (const auto& [sid, why] : st.dropped) {
      std::printf("never alerts: sid %u: %s\n", sid, why.c_str());
    }
  }
  return result.errors.empty() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "check") != 0) return Usage();
  return Check(argc - 2, argv + 2);
}
