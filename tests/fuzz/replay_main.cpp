// Layer: tests/fuzz. A main() that replays saved inputs through a target's
// LLVMFuzzerTestOneInput without libFuzzer, so the corpora and every crasher ever found run as
// an ordinary test (scripts/fuzz.sh --ci builds each target twice: with libFuzzer, and linked
// with this file under ASan+UBSan).
//
//   build-fuzz/replay_filter tests/fuzz/corpus/filter tests/fuzz/crashers/filter
//
// Arguments are files or directories (read non-recursively, in name order). A violated
// invariant or a sanitizer report aborts the process, so a non-zero exit means failure; the
// name of the input being run is printed first so the culprit is obvious.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> in_dir;
      for (const auto& entry : fs::directory_iterator(p)) {
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') in_dir.push_back(entry.path());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  for (const auto& f : files) {
    std::ifstream s(f, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
    std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());  // exact-size heap buffer for ASan
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
