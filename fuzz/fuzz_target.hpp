// The entry point libFuzzer calls once per input, defined by every fuzz/*_fuzz.cpp. libFuzzer
// ships no header that declares it, and the build requires a declaration before each
// definition of a function with external linkage (-Wmissing-declarations / -Wmissing-prototypes).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
