// The fuzz targets' assertion: an invariant that fails aborts, so libFuzzer keeps the input
// (and a replaying test fails on it). The file is named because the interpreters live in
// headers shared by several targets and tests.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)
