// af::use_await's executor for the running loop (include/asyncfiber/detail/loop_executor.hpp).
#include "runtime/io_driver.hpp"
#include "runtime/loop_impl.hpp"

#include <asyncfiber/detail/loop_executor.hpp>

namespace asyncfiber {
namespace detail {

LoopExecutor current_loop_executor() {
    LoopImpl* L = loop_checked("af::use_await");
    return LoopExecutor(L->io->share());
}

}  // namespace detail
}  // namespace asyncfiber
