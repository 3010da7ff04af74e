// asyncfiber/bridge.hpp - from callbacks and threads to await, and back: the three headers
// of the thread bridge in one include.
//
// - asyncfiber/promise.hpp: af::Promise<T> / af::Future<T> and af::await_callback<T>(start).
// - asyncfiber/threads.hpp: af::to_thread, the pool's sizes, af::run_coroutine_threadsafe.
// - asyncfiber/use_await.hpp: af::use_await, the Boost.Asio completion token (the only one
//   that includes Boost.Asio; include the other two alone to keep it out).
#pragma once

#include <asyncfiber/promise.hpp>
#include <asyncfiber/threads.hpp>
#include <asyncfiber/use_await.hpp>
