// TextOut's sink for ordinary code (the async-signal-safe one writes to a descriptor).
#include "text_out.hpp"

#include <ostream>

namespace asyncfiber {
namespace detail {

void TextOut::to_stream(TextOut& o) noexcept {
    try {
        o.os_->write(o.buf_, static_cast<std::streamsize>(o.n_));
    } catch (...) {  // a stream set to throw: the dump is lost, not the caller
    }
}

}  // namespace detail
}  // namespace asyncfiber
