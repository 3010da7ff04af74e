// The books of the cancellation fuzzer (fuzz/cancel_world.hpp): what was put, produced,
// delivered, sent and received, kept next to the library's own state so that anything the
// library loses, duplicates or reorders shows up as a difference. Every method checks what
// can be checked at that moment and aborts (FUZZ_CHECK) on a difference.
#pragma once

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace cancel_fuzz {

/// Items (ints) through queues and compositions. An item is born fresh, is put into a queue
/// (which must then give items back in its own order: FIFO, LIFO or smallest first), is
/// produced (popped from its queue, or made by a pool function), and must then be delivered
/// exactly once: returned to the code that asked for it, or, at the end, found as the value
/// of a task that still holds it. Only shutdown(immediate=true) may drop queued items.
class ItemLedger {
public:
    enum class Order { fifo, lifo, smallest };

    explicit ItemLedger(std::vector<Order> queue_orders) {
        for (Order o : queue_orders) queues_.push_back(Model{o, {}});
    }

    int fresh() {
        int item = ++last_;
        state_[item] = State::fresh;
        return item;
    }

    /// `item` went into queue q (its put returned).
    void put(std::size_t q, int item) {
        FUZZ_CHECK(state_.at(item) == State::fresh);
        state_[item] = State::queued;
        queues_.at(q).items.push_back(item);
    }

    /// `item` came out of queue q (its get returned): it must be the one the queue's order
    /// says comes next.
    void popped(std::size_t q, int item) {
        Model& m = queues_.at(q);
        FUZZ_CHECK(!m.items.empty());
        std::deque<int>::iterator it;
        switch (m.order) {
        case Order::fifo:
            it = m.items.begin();
            break;
        case Order::lifo:
            it = m.items.end() - 1;
            break;
        case Order::smallest:
            it = std::min_element(m.items.begin(), m.items.end());
            break;
        }
        FUZZ_CHECK(*it == item);
        m.items.erase(it);
        FUZZ_CHECK(state_.at(item) == State::queued);
        state_[item] = State::produced;
    }

    /// `item` was made by something other than a queue (a function on the thread pool).
    void produced(int item) {
        FUZZ_CHECK(state_.at(item) == State::fresh);
        state_[item] = State::produced;
    }

    /// `item` reached the code that asked for it.
    void delivered(int item) {
        auto it = state_.find(item);
        FUZZ_CHECK(it != state_.end());
        FUZZ_CHECK(it->second == State::produced);  // produced, and not delivered before
        it->second = State::delivered;
    }

    /// Queue q was shut down immediately: the items in it are dropped, as documented.
    /// Returns how many.
    std::size_t dropped_all(std::size_t q) {
        Model& m = queues_.at(q);
        std::size_t n = m.items.size();
        for (int item : m.items) state_[item] = State::dropped;
        m.items.clear();
        return n;
    }

    /// At the end, once the queues are drained and every task's value collected: nothing was
    /// produced and then lost.
    void check_nothing_lost() const {
        for (const Model& m : queues_) FUZZ_CHECK(m.items.empty());
        for (const auto& s : state_) {
            if (s.second == State::produced)
                std::fprintf(stderr,
                             "item %d lost: got (or made) and never delivered nor retrievable\n",
                             s.first);
            FUZZ_CHECK(s.second == State::fresh || s.second == State::delivered ||
                       s.second == State::dropped);
        }
    }

private:
    enum class State { fresh, queued, produced, delivered, dropped };
    struct Model {
        Order order;
        std::deque<int> items;
    };
    std::vector<Model> queues_;
    std::map<int, State> state_;
    int last_ = 0;
};

/// First come, first served, checked: every attempt to acquire takes a ticket when it
/// starts; when one succeeds, every older attempt still waiting has been passed over and may
/// only end without the resource (it was cancelled or timed out). An older attempt that
/// succeeds after being passed over means a newcomer got ahead of a waiter.
class Turnstile {
public:
    long enter() {
        long t = ++last_;
        passed_over_[t] = false;
        return t;
    }
    void acquired(long ticket) {
        auto it = passed_over_.find(ticket);
        FUZZ_CHECK(it != passed_over_.end());
        if (it->second && checked_)
            std::fprintf(stderr,
                         "first come, first served: attempt %ld got the resource after a later "
                         "attempt had got it first\n",
                         ticket);
        FUZZ_CHECK(!it->second || !checked_);
        for (auto o = passed_over_.begin(); o != it; ++o) o->second = true;
        passed_over_.erase(it);
    }
    void left(long ticket) { passed_over_.erase(ticket); }
    /// Off: only conservation is checked (a known ordering defect is being avoided).
    void set_checked(bool on) { checked_ = on; }

private:
    std::map<long, bool> passed_over_;  // tickets still waiting -> whether passed over
    long last_ = 0;
    bool checked_ = true;
};

/// A byte stream that must arrive whole: what is received is always the next part of what
/// was sent, and at the end (with what is still buffered) all of it.
class ByteLedger {
public:
    /// The next n bytes to send (a cycle over letters and digits), with a newline at the end
    /// if asked, so that readline() finds lines.
    std::string next(std::size_t n, bool newline) const {
        static const char kCycle[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        std::string s;
        for (std::size_t i = 0; i < n; ++i) s += kCycle[(sent_.size() + i) % 36];
        if (newline && n > 0) s.back() = '\n';
        return s;
    }
    void sent(const std::string& s) { sent_ += s; }
    void received(const std::string& s) {
        FUZZ_CHECK(sent_.compare(received_.size(), s.size(), s) == 0);
        received_ += s;
    }
    std::size_t sent_size() const { return sent_.size(); }
    std::size_t unreceived() const { return sent_.size() - received_.size(); }
    /// The bytes sent and not received yet.
    std::string pending() const { return sent_.substr(received_.size()); }
    void check_complete() const { FUZZ_CHECK(received_ == sent_); }

private:
    std::string sent_, received_;
};

/// A byte stream read by Asio operations through af::use_await, where a read whose task is
/// cancelled after the operation completed loses what it read (asyncio's sock_recv does the
/// same): every byte's value is its position (at most kMaxBytes are sent), so each received
/// byte says where it was. Checked: bytes arrive in order, never twice, and every gap was
/// taken by reads that were cancelled and that could have read it before they learnt of
/// their cancellation, or by operations left running whose loss was reported.
class PositionedBytes {
public:
    static constexpr std::size_t kMaxBytes = 250;

    /// The next n bytes to send (fewer once kMaxBytes are sent).
    std::string next(std::size_t n) const {
        std::string s;
        for (std::size_t i = sent_; i < kMaxBytes && s.size() < n; ++i) s += static_cast<char>(i);
        return s;
    }
    void sent(const std::string& s) { sent_ += s.size(); }
    void received(const std::string& s) {
        for (char c : s) {
            std::size_t p = static_cast<unsigned char>(c);
            FUZZ_CHECK(p < sent_);
            FUZZ_CHECK(p >= next_);  // in order, never twice
            if (p > next_) gaps_.push_back(Gap{next_, p});
            next_ = p + 1;
        }
    }
    /// A read of at most `max` bytes was cancelled; what was sent by then, it may have taken.
    void cancelled_read(std::size_t max) { cancelled_.push_back(Cancelled{max, sent_}); }

    /// At the end: `rest` is what was still in the socket. Every missing byte must be one a
    /// cancelled read can have taken: each read takes at most its size, and only bytes sent
    /// before it learnt of its cancellation. Checked as a capacity count (every missing byte
    /// at position p or later needs reads cancelled after p was sent, with room enough),
    /// which is exact for the bytes taken and never blames a possible schedule. Beyond that,
    /// bytes may be lost only to operations left running whose loss was reported (each takes
    /// at most `orphan_max` bytes): a loss is never silent.
    void check(const std::string& rest, std::size_t orphans_reported, std::size_t orphan_max) {
        received(rest);
        if (next_ < sent_) gaps_.push_back(Gap{next_, sent_});
        std::vector<std::size_t> missing;  // positions, highest first
        for (auto g = gaps_.rbegin(); g != gaps_.rend(); ++g)
            for (std::size_t p = g->end; p-- > g->begin;) missing.push_back(p);
        std::sort(cancelled_.begin(), cancelled_.end(),
                  [](const Cancelled& a, const Cancelled& b) { return a.sent_then > b.sent_then; });
        std::size_t room = 0, next_read = 0, unexplained = 0;
        for (std::size_t p : missing) {
            while (next_read < cancelled_.size() && cancelled_[next_read].sent_then > p)
                room += cancelled_[next_read++].max;
            if (room > 0)
                --room;
            else
                ++unexplained;
        }
        if (unexplained > orphans_reported * orphan_max)
            std::fprintf(stderr,
                         "asio bytes: %zu lost silently, taken by no cancelled read (%zu bytes "
                         "sent, %zu missing, %zu reads cancelled, %zu lost reads reported)\n",
                         unexplained, sent_, missing.size(), cancelled_.size(), orphans_reported);
        FUZZ_CHECK(unexplained <= orphans_reported * orphan_max);
    }

private:
    struct Gap {
        std::size_t begin, end;
    };
    struct Cancelled {
        std::size_t max, sent_then;
    };
    std::size_t sent_ = 0, next_ = 0;
    std::vector<Gap> gaps_;
    std::vector<Cancelled> cancelled_;
};

}  // namespace cancel_fuzz
