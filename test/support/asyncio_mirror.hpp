// What the tests that mirror CPython's asyncio tests step by step (test/cpython_*_test.cpp)
// share: unittest's assertRaises, Python's try/finally, asyncio's test_utils.run_briefly, and
// the Python exception types those tests raise, as C++ types.
#pragma once

#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

namespace mirror {

namespace af = asyncfiber;

// Python's built-in exceptions, as the std::exception types closest to them (asyncio code
// catches them as Exception, as C++ code catches std::exception).
struct ValueError : std::invalid_argument {
    explicit ValueError(const std::string& what = "ValueError") : std::invalid_argument(what) {}
};
struct KeyError : std::out_of_range {
    explicit KeyError(const std::string& what = "KeyError") : std::out_of_range(what) {}
};
struct ZeroDivisionError : std::domain_error {
    explicit ZeroDivisionError(const std::string& what = "division by zero")
        : std::domain_error(what) {}
};
struct TypeError : std::logic_error {
    explicit TypeError(const std::string& what = "TypeError") : std::logic_error(what) {}
};
struct PyRuntimeError : std::runtime_error {  // Python's RuntimeError raised by test code
    explicit PyRuntimeError(const std::string& what = "RuntimeError") : std::runtime_error(what) {}
};

/// The exception an assert_raises caught (empty if none was).
template <class E>
class Raised {
public:
    explicit Raised(std::exception_ptr p = nullptr) noexcept : p_(std::move(p)) {}
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// The exception object (alive as long as this is). Throws std::logic_error (failing the
    /// test) when none was caught.
    const E& get() const {
        if (!p_) throw std::logic_error("the expected exception was not raised");
        try {
            std::rethrow_exception(p_);
        } catch (const E& e) {
            return e;  // the exception_ptr keeps the object alive
        }
    }

    /// The C nested in it, if one is (std::throw_with_nested: Python's `raise ... from`, the
    /// exception's __cause__).
    template <class C>
    Raised<C> cause() const {
        if (!p_) return Raised<C>();
        try {
            std::rethrow_exception(p_);
        } catch (const std::nested_exception& n) {
            try {
                n.rethrow_nested();
            } catch (const C&) {
                return Raised<C>(n.nested_ptr());
            } catch (...) {
            }
        } catch (...) {
        }
        return Raised<C>();
    }
    template <class C>
    bool caused_by() const {
        return static_cast<bool>(cause<C>());
    }

private:
    std::exception_ptr p_;
};

/// unittest's `with self.assertRaises(E):` — runs fn(); an E is caught and returned; no
/// exception at all fails the test; any other exception goes on, as it goes through
/// assertRaises (a CancelledError through assertRaises(TimeoutError), for one).
template <class E, class F>
Raised<E> assert_raises(F&& fn, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    try {
        std::forward<F>(fn)();
    } catch (const E&) {
        return Raised<E>(std::current_exception());
    }
    ADD_FAILURE_AT(file, line) << typeid(E).name() << " not raised";
    return Raised<E>();
}

/// Python's `try: body() finally: fin()`: fin runs whether body returns or throws; an
/// exception thrown by fin replaces body's, as in Python.
template <class Body, class Fin>
void try_finally(Body&& body, Fin&& fin) {
    try {
        body();
    } catch (...) {
        fin();
        throw;
    }
    fin();
}

/// asyncio's test_utils.run_briefly(loop), called from the test's task: the loop goes round
/// twice (run_briefly runs a task that does nothing until it has ended).
inline void run_briefly() {
    af::sleep(std::chrono::seconds(0));
    af::sleep(std::chrono::seconds(0));
}

/// Seconds since t0 on the loop's clock (asyncio's loop.time() differences).
inline double seconds_since(af::Clock::time_point t0) {
    return std::chrono::duration<double>(af::Clock::now() - t0).count();
}

}  // namespace mirror
