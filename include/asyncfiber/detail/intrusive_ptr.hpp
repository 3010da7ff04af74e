// Internal: an owning pointer to an object that counts its own references (a task block, a
// callback, a promise's shared state). The one reference-counting handle of the library: the
// public handles (TaskRef, Handle, Promise/Future, Context) hold one. T provides add_ref()
// and release() (which deletes the object at zero); whether the count is atomic is T's
// business. A type that the public headers only declare (its definition is in lib/) gives
// instead a pair of functions `intrusive_add_ref(T*)` and `intrusive_release(T*)` beside it,
// defined out of line, which are found by argument-dependent lookup and chosen over the
// defaults below.
//
// Unlike std::shared_ptr it costs one pointer and no control block, and it does not need
// <memory>, which the public headers avoid for their weight (docs/performance.md).
#pragma once

namespace asyncfiber {
namespace detail {

template <class T>
void intrusive_add_ref(T* p) noexcept {
    p->add_ref();
}
template <class T>
void intrusive_release(T* p) noexcept {
    p->release();
}

template <class T>
class IntrusivePtr {
public:
    IntrusivePtr() noexcept = default;
    /// Takes over one reference the caller holds (a new object starts with one).
    static IntrusivePtr adopt(T* p) noexcept {
        IntrusivePtr r;
        r.p_ = p;
        return r;
    }
    IntrusivePtr(const IntrusivePtr& o) noexcept : p_(o.p_) {
        if (p_) intrusive_add_ref(p_);
    }
    IntrusivePtr(IntrusivePtr&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    IntrusivePtr& operator=(IntrusivePtr o) noexcept {
        swap(o);
        return *this;
    }
    ~IntrusivePtr() {
        if (p_) intrusive_release(p_);
    }

    T* get() const noexcept { return p_; }
    T* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    /// Drops the reference held, if any.
    void reset() noexcept { IntrusivePtr().swap(*this); }
    void swap(IntrusivePtr& o) noexcept {
        T* t = p_;
        p_ = o.p_;
        o.p_ = t;
    }

    friend bool operator==(const IntrusivePtr& a, const IntrusivePtr& b) noexcept {
        return a.p_ == b.p_;
    }
    friend bool operator!=(const IntrusivePtr& a, const IntrusivePtr& b) noexcept {
        return a.p_ != b.p_;
    }

private:
    T* p_ = nullptr;
};

}  // namespace detail
}  // namespace asyncfiber
