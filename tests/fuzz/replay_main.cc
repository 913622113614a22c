// Runs a libFuzzer target over the files of its seed corpus (and any crash reproducers added
// there) as an ordinary test, so the default test run replays the corpus without clang.
//   fuzz-corpus-replay DIR...   prints one line per directory and 'N passed, N failed'
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    std::vector<std::filesystem::path> paths;
    for (const auto& e : std::filesystem::directory_iterator(argv[i], ec)) {
      if (e.is_regular_file()) paths.push_back(e.path());
    }
    if (ec || paths.empty()) {
      std::printf("FAIL %s: no corpus files (%s)\n", argv[i], ec.message().c_str());
      std::printf("0 passed, 1 failed\n");
      return 1;
    }
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      // A target that finds a problem aborts: the test then fails with the file's name above.
      std::printf("  %s (%zu bytes)\n", p.filename().c_str(), bytes.size());
      std::fflush(stdout);
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++files;
    }
  }
  std::printf("%zu passed, 0 failed\n", files);
  return 0;
}
