// af::debug::FedStream, the feed_data / feed_eof test hook: arrivals wake a waiting reader,
// chunks fed before the reader runs arrive together, EOF and misuse.
#include <asyncfiber/asyncfiber.hpp>
#include <asyncfiber/debug.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

TEST(FedStream, FeedWakesAWaitingReader) {
    af::run([] {
        af::debug::FedStream s;
        af::StreamReader r = s.reader();
        std::vector<std::string> log;
        auto reader = af::async([&] {
            log.push_back("line " + r.readline());
            log.push_back("exactly " + r.readexactly(3));
        });
        af::sleep(0s);
        log.push_back("feed1");
        s.feed_data("ab");
        af::sleep(0s);  // the reader wakes, finds no "\n" yet and waits again
        log.push_back("feed2");
        s.feed_data("c\nxy");
        s.feed_data("z");  // fed before the reader runs: arrives with the previous chunk
        af::await(reader);
        EXPECT_EQ(log, (std::vector<std::string>{"feed1", "feed2", "line abc\n", "exactly xyz"}));
        EXPECT_EQ(r.buffered(), 0u);
        EXPECT_FALSE(r.at_eof());
    });
}

TEST(FedStream, EofEndsReadsAndReadUntilEof) {
    af::run([] {
        af::debug::FedStream s(4);
        af::StreamReader r = s.reader();
        EXPECT_EQ(r.limit(), 4u);
        auto reader = af::async([&] { return r.read(-1); });
        s.feed_data("12");
        af::sleep(0s);
        s.feed_data("345");
        s.feed_eof();
        s.feed_eof();  // idempotent
        EXPECT_EQ(af::await(reader), "12345");
        EXPECT_TRUE(r.at_eof());
        EXPECT_THROW(s.feed_data("more"), af::InvalidStateError);
    });
}

TEST(FedStream, IncompleteReadAtEof) {
    af::run([] {
        af::debug::FedStream s;
        af::StreamReader r = s.reader();
        s.feed_data("ab");
        s.feed_eof();
        try {
            r.readexactly(3);
            FAIL() << "no IncompleteReadError";
        } catch (const af::IncompleteReadError& e) {
            EXPECT_EQ(e.partial(), "ab");
            EXPECT_EQ(e.expected(), 3u);
        }
    });
}

TEST(FedStream, CancelledReadKeepsTheBuffer) {
    af::run([] {
        af::debug::FedStream s;
        af::StreamReader r = s.reader();
        s.feed_data("abc");
        auto reader = af::async([&] { return r.readuntil("\n"); });
        af::sleep(0s);
        reader.cancel();
        EXPECT_THROW(af::await(reader), af::CancelledError);
        EXPECT_EQ(r.buffered(), 3u);
        s.feed_data("\n");
        EXPECT_EQ(r.readline(), "abc\n");
    });
}

TEST(FedStream, MisuseIsRefused) {
    EXPECT_THROW(af::debug::FedStream s, af::RuntimeError);  // no running loop
    af::run([] { EXPECT_THROW(af::debug::FedStream s(0), std::invalid_argument); });
}
