// asyncfiber/core.hpp - the umbrella without networking: tasks, the loop, composition,
// timeouts, synchronization, queues, channels, promises, threads, many loops, task-local
// state and diagnostics, and nothing of Boost.Asio. Leaves out streams and servers (net.hpp),
// TLS (tls.hpp), datagrams (datagram.hpp), subprocesses (process.hpp) and the Asio
// completion token (use_await.hpp); asyncfiber.hpp includes this and those.
//
// debug.hpp declares its stream test hook (debug::FedStream) with net.hpp's stream types, so
// their declarations come along; none of them includes Boost.Asio.
#pragma once

#include <asyncfiber/version.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/task.hpp>
#include <asyncfiber/context.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/gather.hpp>
#include <asyncfiber/timeouts.hpp>
#include <asyncfiber/wait.hpp>
#include <asyncfiber/task_group.hpp>
#include <asyncfiber/sync.hpp>
#include <asyncfiber/queue.hpp>
#include <asyncfiber/channel.hpp>
#include <asyncfiber/promise.hpp>
#include <asyncfiber/threads.hpp>
#include <asyncfiber/concurrent_future.hpp>
#include <asyncfiber/runtime.hpp>
#include <asyncfiber/debug.hpp>
