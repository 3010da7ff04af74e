// The cancellation fuzzer's saved inputs as regression tests: every file in
// fuzz/corpus/cancel/ (its seeds, and every schedule it found that broke an invariant) is
// one test case, run through the same interpreter as fuzz/cancel_fuzz.cpp, with every
// invariant on (fuzz/cancel_fuzz.cpp lists them). A broken invariant prints
// "invariant failed: ..." and aborts the case. Deadlines and pool threads make a run depend
// on timing, so each input is replayed several times. CANCEL_FUZZ_TRACE=1 prints the
// program as steps and every operation as it runs (docs/debugging.md).
#include "../fuzz/cancel_world.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

const char kCorpus[] = ASYNCFIBER_CANCEL_CORPUS;
constexpr int kReplays = 5;

std::vector<std::string> saved_inputs() {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(kCorpus)) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') names.push_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string s = info.param;
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return s;
}

class CancelReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(CancelReplay, NothingLost) {
    std::ifstream f(std::string(kCorpus) + "/" + GetParam(), std::ios::binary);
    ASSERT_TRUE(f.is_open()) << GetParam();
    const std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(f)),
                                         std::istreambuf_iterator<char>());
    const cancel_fuzz::Avoid avoid = cancel_fuzz::Avoid::from_env();  // unset: all on
    for (int i = 0; i < kReplays; ++i) cancel_fuzz::run_input(data.data(), data.size(), avoid);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CancelReplay, ::testing::ValuesIn(saved_inputs()), test_name);

// The corpus is there and not empty: an empty list would pass without replaying anything.
TEST(CancelReplayCorpus, HasInputs) { EXPECT_GE(saved_inputs().size(), 10u); }

}  // namespace
