//! `byte_span`: the Emilua byte buffer type (spec/io.md "byte_span").
//!
//! # Invariants
//!
//! * **Ownership.** The bytes live in a [`Storage`] allocated by Rust's global
//!   allocator (or, for a buffer made with `SpanRef::try_new_mapped`, in
//!   an anonymous mapping of its own), outside the Lua heap. A `Storage` is owned jointly (an `Rc`)
//!   by every [`SpanRef`] that views it: Lua `byte_span` userdata values,
//!   and any pending kernel operation, which must keep its own `SpanRef`
//!   clone until the kernel has finished with the memory. The storage is
//!   freed when the last reference goes, which may be after the Lua VM that
//!   created it is gone.
//! * **Alignment.** A storage of 4 KiB or more starts on a 4 KiB boundary
//!   (the allocation is padded by up to 4095 bytes for that). The kernel's
//!   copy of file data into a buffer that starts a few bytes past a page
//!   boundary is ~3x slower here (measured: `preadv2`/`read`/io_uring reads
//!   of cached data into page + 8 or page + 16; docs/performance.md
//!   "io-nowait"), and glibc's malloc puts every allocation of 128 KiB or
//!   more exactly there (page + 16).
//! * **It never moves.** The allocation is made once, at its final size, and
//!   is never reallocated, grown, shrunk or moved; a pointer obtained from
//!   [`SpanRef::raw_parts`] stays valid for as long as that `SpanRef` (or any
//!   clone) is alive.
//! * **Capacity is fixed.** A storage's size is decided at creation. A view
//!   (`SpanRef`) is `offset + len` into it; the view's capacity is always
//!   `storage size - offset`, so `len <= capacity` and
//!   `offset + capacity == storage size` hold for every view. Growing a view
//!   (`slice` past `#bs`, `append` in place) only ever re-views bytes that
//!   already exist; anything bigger gets new storage.
//! * **Single thread.** `Rc` makes these types `!Send`: a storage is only
//!   touched by the one thread that runs its VM (and by the kernel).
//! * **Aliasing.** Bytes are `UnsafeCell<u8>`, so any number of views may
//!   overlap and write. The module only forms a `&[u8]` over the bytes for the
//!   duration of a call that does not run Lua code and does not write to any
//!   storage, so no Rust-side write can happen while such a slice is alive.
//!   The kernel is the exception: while a *read* operation (kernel → buffer)
//!   is in flight, it may store into the bytes at any time. Lua code that
//!   looks at those bytes meanwhile sees valid `u8` values, but which ones is
//!   unspecified until the operation completes. A *write* operation (buffer
//!   → kernel) likewise sends unspecified bytes if Lua changes them while it
//!   is in flight.
//!
//! # Errors
//!
//! Follows the project convention (`modules::error`): argument type errors
//! are generic `EINVAL` with `arg`, range errors generic `ERANGE`, unknown
//! keys `emilua.core` `bad_index`, assignments to non-index keys generic
//! `EPERM`, allocation failure generic `ENOMEM`.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::rc::Rc;

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};

use crate::actor::vm::unless_closing;
use crate::modules::error::{einval, CoreError, ErrorCode};

/// Default character set of `trimmed()`.
const DEFAULT_LWS: &[u8] = b" \x0c\n\r\t\x0b";

/// Storages of at least this size start on a boundary of this size.
const PAGE_ALIGNED_FROM: usize = 4096;

/// A fixed-size, zero-initialised, never-moving byte allocation.
struct Storage {
    /// The allocation, `total` bytes (dangling when `total` is 0); the
    /// storage's bytes are `[start, start + size)` of it.
    cells: std::ptr::NonNull<UnsafeCell<u8>>,
    total: usize,
    start: usize,
    size: usize,
    /// Made by `mmap` and freed by `munmap` (see [`Storage::try_mapped`]),
    /// not by the global allocator.
    mapped: bool,
}

impl Storage {
    /// Allocates `size` zero bytes; `None` when the allocator refuses.
    fn try_zeroed(size: usize) -> Option<Storage> {
        if size == 0 {
            return Some(Storage {
                cells: std::ptr::NonNull::dangling(),
                total: 0,
                start: 0,
                size: 0,
                mapped: false,
            });
        }
        // Padding instead of an aligned layout: the global allocator then
        // zeroes with calloc, which leaves a large allocation's pages
        // untouched until used (when it maps it: a chunk carved from the
        // heap's top is zeroed with `memset`).
        let pad = if size >= PAGE_ALIGNED_FROM {
            PAGE_ALIGNED_FROM - 1
        } else {
            0
        };
        let total = size.checked_add(pad)?;
        let layout = Layout::array::<u8>(total).ok()?;
        // SAFETY: `layout` has a non-zero size (size > 0 was checked above).
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let cells = std::ptr::NonNull::new(p.cast::<UnsafeCell<u8>>())?;
        // At most `pad` (the offset to the next 4 KiB boundary is below
        // 4096; with no padding nothing is skipped).
        let start = if pad > 0 {
            p.align_offset(PAGE_ALIGNED_FROM)
        } else {
            0
        };
        debug_assert!(start <= pad);
        Some(Storage {
            cells,
            total,
            start,
            size,
            mapped: false,
        })
    }

    /// `size` (> 0) zero bytes in an anonymous mapping of their own:
    /// page-aligned, and no page is touched until it is used (a heap
    /// chunk's `calloc` may `memset` it all). For a large buffer of which
    /// little is used at a time, made where each page fault is dear (a
    /// fresh sandbox). `None` when `mmap` refuses.
    fn try_mapped(size: usize) -> Option<Storage> {
        if size == 0 {
            return Storage::try_zeroed(0);
        }
        let total = size.checked_next_multiple_of(PAGE_ALIGNED_FROM)?;
        // SAFETY: a new private anonymous mapping; no existing memory is
        // involved.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Storage {
            cells: std::ptr::NonNull::new(p.cast::<UnsafeCell<u8>>())?,
            total,
            start: 0,
            size,
            mapped: true,
        })
    }

    fn size(&self) -> usize {
        self.size
    }

    /// Pointer to byte `offset` (`offset == size()` gives the end pointer).
    fn ptr_at(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.size());
        // SAFETY: `start + size <= total`, so `start + offset` is within
        // the allocation or one past its end (or 0 for an empty storage).
        let cell = unsafe { self.cells.as_ptr().add(self.start + offset) };
        // `UnsafeCell::raw_get` turns the cell pointer into a pointer that is
        // allowed to write through a shared borrow of the cells.
        UnsafeCell::raw_get(cell)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if self.total == 0 {
            return;
        }
        if self.mapped {
            // SAFETY: the mapping `try_mapped` made, `total` bytes; no
            // view is left (this is the last reference).
            unsafe { libc::munmap(self.cells.as_ptr().cast(), self.total) };
        } else {
            // SAFETY: allocated by the global allocator with this layout
            // (`try_zeroed`); no view is left.
            unsafe {
                std::alloc::dealloc(
                    self.cells.as_ptr().cast(),
                    Layout::array::<u8>(self.total).expect("the layout it was made with"),
                )
            };
        }
    }
}

/// A view (storage + offset + length) into reference-counted, fixed-capacity
/// memory. Clone = another reference to the same memory.
#[derive(Clone)]
pub struct SpanRef {
    storage: Rc<Storage>,
    offset: usize,
    len: usize,
}

impl std::fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRef")
            .field("storage", &Rc::as_ptr(&self.storage))
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl SpanRef {
    /// A view of `len` bytes at the start of new zeroed storage of
    /// `capacity` bytes.
    ///
    /// # Panics
    /// If `len > capacity`. Aborts (like `Vec`) if the memory can't be
    /// allocated.
    pub fn new_zeroed(len: usize, capacity: usize) -> SpanRef {
        assert!(len <= capacity, "byte_span length exceeds capacity");
        match Self::try_new_zeroed(len, capacity) {
            Some(span) => span,
            None => match Layout::array::<u8>(capacity) {
                Ok(layout) => std::alloc::handle_alloc_error(layout),
                Err(_) => panic!("byte_span capacity overflow"),
            },
        }
    }

    /// Like [`SpanRef::try_new_zeroed`], in an anonymous mapping of its
    /// own whose pages are touched only when used (`Storage::try_mapped`).
    pub(crate) fn try_new_mapped(len: usize, capacity: usize) -> Option<SpanRef> {
        debug_assert!(len <= capacity);
        Some(SpanRef {
            storage: Rc::new(Storage::try_mapped(capacity)?),
            offset: 0,
            len,
        })
    }

    /// Like [`SpanRef::new_zeroed`] but reports allocation failure.
    pub(crate) fn try_new_zeroed(len: usize, capacity: usize) -> Option<SpanRef> {
        debug_assert!(len <= capacity);
        Some(SpanRef {
            storage: Rc::new(Storage::try_zeroed(capacity)?),
            offset: 0,
            len,
        })
    }

    /// A view of new storage holding a copy of `bytes` (capacity = length).
    pub fn from_bytes(bytes: &[u8]) -> SpanRef {
        let span = SpanRef::new_zeroed(bytes.len(), bytes.len());
        // SAFETY: `span` is fresh storage of exactly `bytes.len()` bytes that
        // nothing else references, and `bytes` cannot point into it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), span.ptr(), bytes.len()) };
        span
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available from this view's start to the end of its storage.
    pub fn capacity(&self) -> usize {
        self.storage.size() - self.offset
    }

    /// Pointer to the first byte of this view and its length, for the kernel
    /// to read or write while an op holds this SpanRef.
    ///
    /// The pointer stays valid (the storage never moves) for as long as this
    /// `SpanRef` or a clone of it is alive. Bytes written through it become
    /// visible to every view of the same storage.
    pub fn raw_parts(&mut self) -> (*mut u8, usize) {
        (self.ptr(), self.len)
    }

    /// A copy of the bytes of this view.
    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Pointer to the first byte of this view.
    fn ptr(&self) -> *mut u8 {
        self.storage.ptr_at(self.offset)
    }

    /// Runs `f` over the bytes of this view.
    ///
    /// `f` must not write to any storage nor run Lua code (every caller in
    /// this module passes a pure function over byte slices).
    pub(crate) fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: `ptr()..ptr()+len` lies inside the live allocation
        // (`offset + len <= storage size` is a view invariant) and holds
        // initialised `u8`s. The shared slice lives only during `f`, which
        // by contract does not write any storage and runs no Lua code; the VM
        // is single-threaded, so no Rust write can overlap it. The kernel may
        // store into these bytes during a pending read op: the values seen
        // are then unspecified (see the module doc), which the callers accept.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr(), self.len) };
        f(bytes)
    }

    /// A view of the same storage, `start` bytes into this one, of `len`
    /// bytes. Caller guarantees `start + len <= self.capacity()`.
    fn subview(&self, start: usize, len: usize) -> SpanRef {
        debug_assert!(start + len <= self.capacity());
        SpanRef {
            storage: Rc::clone(&self.storage),
            offset: self.offset + start,
            len,
        }
    }

    fn get(&self, index: usize) -> u8 {
        debug_assert!(index < self.len);
        // SAFETY: `index < len`, so the byte is inside the allocation. A
        // single-byte read through the cell pointer creates no reference, so
        // it cannot conflict with other views.
        unsafe { self.ptr().add(index).read() }
    }

    fn set(&self, index: usize, byte: u8) {
        debug_assert!(index < self.len);
        // SAFETY: `index < len`, so the byte is inside the allocation. The
        // bytes are `UnsafeCell`s, so writing through a shared `Rc` is
        // permitted; no `&[u8]` over the storage is alive (those exist only
        // inside `with_bytes`, which never calls back here).
        unsafe { self.ptr().add(index).write(byte) }
    }

    /// Copies `src` to byte `at` of this view's storage region (memmove).
    ///
    /// Caller guarantees `at + src_len <= self.capacity()`.
    ///
    /// # Safety
    /// `src` must be valid for reads of `src_len` bytes for the duration of
    /// the call (it may overlap any storage).
    unsafe fn write_raw(&self, at: usize, src: *const u8, src_len: usize) {
        debug_assert!(at + src_len <= self.capacity());
        if src_len == 0 {
            return;
        }
        // SAFETY: the destination range lies in the allocation (caller
        // checked it against capacity); `src` is readable (caller contract);
        // `ptr::copy` allows overlap; no `&[u8]` over the storage is alive.
        unsafe { std::ptr::copy(src, self.ptr().add(at), src_len) }
    }

    /// Whether two views are the same memory: same storage, offset and len.
    fn same_view(&self, other: &SpanRef) -> bool {
        Rc::ptr_eq(&self.storage, &other.storage)
            && self.offset == other.offset
            && self.len == other.len
    }
}

/// The userdata type Lua sees.
pub struct ByteSpan(pub SpanRef);

// Every function below that takes Lua values is wrapped in `unless_closing`:
// reading a userdata or string handle inside a finalizer run while the VM
// closes would panic in mlua. `#bs`, `capacity` and `tostring` read only
// the span itself and work then too.

/// Creates the global `byte_span` table (new, append, and the metatable) in
/// `lua` and returns it.
pub fn register(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("new", lua.create_function(unless_closing(lua_new))?)?;
    table.set(
        "append",
        lua.create_function(unless_closing(lua_append_nonmember))?,
    )?;
    lua.globals().set("byte_span", &table)?;
    Ok(table)
}

/// App data of a VM whose `ByteSpan` metatable has its name. mlua builds
/// that metatable (one function per method, ~3.4 kB of Lua heap) on the
/// first span a VM creates, not at boot: most actors never make one.
struct MetatableNamed;

/// The SpanRef inside a Lua value that is a byte_span, if it is one.
pub fn span_from_value(v: &Value) -> Option<SpanRef> {
    match v {
        Value::UserData(ud) => ud.borrow::<ByteSpan>().ok().map(|bs| bs.0.clone()),
        _ => None,
    }
}

/// A new byte_span userdata value.
pub fn push_span(lua: &Lua, span: SpanRef) -> mlua::Result<AnyUserData> {
    let ud = lua.create_userdata(ByteSpan(span))?;
    if lua.app_data_ref::<MetatableNamed>().is_none() {
        name_metatable(lua, &ud)?;
    }
    Ok(ud)
}

/// Makes `getmetatable(bs)` return `"byte_span"` (mlua sets `false`) for
/// every span of this VM; `ud` is the VM's first one.
#[cold]
fn name_metatable(lua: &Lua, ud: &AnyUserData) -> mlua::Result<()> {
    super::name_userdata_metatable(lua, ud.clone(), c"byte_span")?;
    // Only once it is named: a failure (no memory) is retried next time.
    // While some caller holds app data (the VM state) the flag cannot be
    // set (`set_app_data` would panic); naming again later is harmless.
    let _ = lua.try_set_app_data(MetatableNamed);
    Ok(())
}

impl UserData for ByteSpan {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("capacity", |_, this| Ok(this.0.capacity()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function("slice", unless_closing(lua_slice));
        methods.add_function("copy", unless_closing(lua_copy));
        methods.add_function("append", unless_closing(lua_append_member));
        methods.add_function("starts_with", unless_closing(lua_starts_with));
        methods.add_function("ends_with", unless_closing(lua_ends_with));
        methods.add_function(
            "find",
            unless_closing(|_, args: (Value, Value, Value)| forward_search(args, find_sub)),
        );
        methods.add_function(
            "rfind",
            unless_closing(|_, args: (Value, Value, Value)| backward_search(args, rfind_sub)),
        );
        methods.add_function(
            "find_first_of",
            unless_closing(|_, args: (Value, Value, Value)| {
                forward_search(args, |hay, set, from| {
                    find_forward(hay, from, &byte_set(set), true)
                })
            }),
        );
        methods.add_function(
            "find_last_of",
            unless_closing(|_, args: (Value, Value, Value)| {
                backward_search(args, |hay, set, upto| {
                    find_backward(hay, upto, &byte_set(set), true)
                })
            }),
        );
        methods.add_function(
            "find_first_not_of",
            unless_closing(|_, args: (Value, Value, Value)| {
                forward_search(args, |hay, set, from| {
                    find_forward(hay, from, &byte_set(set), false)
                })
            }),
        );
        methods.add_function(
            "find_last_not_of",
            unless_closing(|_, args: (Value, Value, Value)| {
                backward_search(args, |hay, set, upto| {
                    find_backward(hay, upto, &byte_set(set), false)
                })
            }),
        );
        methods.add_function("trimmed", unless_closing(lua_trimmed));

        // mlua's generated `__index` looks up `capacity` and the methods
        // above first, and calls this for every other key.
        methods.add_meta_function(MetaMethod::Index, unless_closing(lua_index));
        methods.add_meta_function(MetaMethod::NewIndex, unless_closing(lua_newindex));
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.len()));
        methods.add_meta_function(
            MetaMethod::Eq,
            unless_closing(|_, (a, b): (Value, Value)| {
                Ok(match (span_from_value(&a), span_from_value(&b)) {
                    (Some(a), Some(b)) => a.same_view(&b),
                    _ => false,
                })
            }),
        );
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            this.0.with_bytes(|b| lua.create_string(b))
        });
    }
}

// ---------------------------------------------------------------------------
// Argument helpers

/// How a Lua value reads as an integer argument.
enum IntArg {
    /// `nil` or absent.
    Absent,
    Int(i64),
    /// A number without an exact `i64` value (fraction, NaN, ±inf, huge).
    NotInteger,
    /// Not a number at all.
    WrongType,
}

fn int_arg(v: &Value) -> IntArg {
    match v {
        Value::Nil => IntArg::Absent,
        Value::Integer(i) => IntArg::Int(*i),
        Value::Number(n) => {
            // The range check keeps `as` exact: 2^63 itself is excluded.
            if n.fract() == 0.0 && *n >= -(2f64.powi(63)) && *n < 2f64.powi(63) {
                IntArg::Int(*n as i64)
            } else {
                IntArg::NotInteger
            }
        }
        _ => IntArg::WrongType,
    }
}

fn erange() -> mlua::Error {
    ErrorCode::generic(libc::ERANGE).into()
}

fn enomem() -> mlua::Error {
    ErrorCode::generic(libc::ENOMEM).into()
}

/// The span that is argument `arg` (the method receiver is argument 1), or
/// `EINVAL` naming it.
pub fn span_arg(v: &Value, arg: i32) -> mlua::Result<SpanRef> {
    span_from_value(v).ok_or_else(|| einval(arg))
}

/// A byte-string argument: a Lua string, a byte_span, or (where allowed)
/// `nil` meaning empty.
enum Source {
    Empty,
    Str(mlua::LuaString),
    Span(SpanRef),
}

impl Source {
    fn from_value(v: &Value, arg: i32, nil_ok: bool) -> mlua::Result<Source> {
        match v {
            Value::Nil if nil_ok => Ok(Source::Empty),
            Value::String(s) => Ok(Source::Str(s.clone())),
            other => span_from_value(other)
                .map(Source::Span)
                .ok_or_else(|| einval(arg)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::Empty => 0,
            Source::Str(s) => s.as_bytes().len(),
            Source::Span(span) => span.len(),
        }
    }

    /// Runs `f` over the bytes (same contract as [`SpanRef::with_bytes`]).
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Source::Empty => f(&[]),
            Source::Str(s) => f(&s.as_bytes()),
            Source::Span(span) => span.with_bytes(f),
        }
    }

    /// Copies these bytes to byte `at` of `dst`'s region (memmove).
    /// Caller guarantees `at + self.len() <= dst.capacity()`.
    fn write_into(&self, dst: &SpanRef, at: usize) {
        match self {
            Source::Empty => {}
            Source::Str(s) => {
                let bytes = s.as_bytes();
                // SAFETY: `bytes` borrows the Lua string (kept alive by `s`)
                // for the whole call; it is Lua-heap memory, never storage.
                unsafe { dst.write_raw(at, bytes.as_ptr(), bytes.len()) }
            }
            // SAFETY: `src` is a live view (we hold its `Rc`), so its
            // `len` bytes are readable; overlap with `dst` is allowed.
            Source::Span(src) => unsafe { dst.write_raw(at, src.ptr(), src.len()) },
        }
    }

    fn shares_storage_with(&self, span: &SpanRef) -> bool {
        matches!(self, Source::Span(s) if Rc::ptr_eq(&s.storage, &span.storage))
    }
}

// ---------------------------------------------------------------------------
// Lua functions

/// `byte_span.new(len[, cap=len])`
fn lua_new(lua: &Lua, (len, cap): (Value, Value)) -> mlua::Result<AnyUserData> {
    let len = match int_arg(&len) {
        IntArg::Int(n) if n >= 0 => n,
        _ => return Err(einval(1)),
    };
    let cap = match int_arg(&cap) {
        IntArg::Absent => len,
        IntArg::Int(n) if n >= 0 => n,
        _ => return Err(einval(2)),
    };
    if len > cap {
        return Err(einval(2));
    }
    let len = usize::try_from(len).map_err(|_| enomem())?;
    let cap = usize::try_from(cap).map_err(|_| enomem())?;
    let span = SpanRef::try_new_zeroed(len, cap).ok_or_else(enomem)?;
    push_span(lua, span)
}

/// `bs[key]` for keys that are neither `capacity` nor a method name.
fn lua_index(_: &Lua, (this, key): (Value, Value)) -> mlua::Result<u8> {
    let span = span_arg(&this, 1)?;
    match int_arg(&key) {
        IntArg::Int(i) if i >= 1 && (i as u64) <= span.len() as u64 => Ok(span.get(i as usize - 1)),
        IntArg::Int(_) | IntArg::NotInteger => Err(erange()),
        IntArg::Absent | IntArg::WrongType => Err(ErrorCode::core(CoreError::BadIndex).into()),
    }
}

/// `bs[i] = v`
fn lua_newindex(_: &Lua, (this, key, value): (Value, Value, Value)) -> mlua::Result<()> {
    let span = span_arg(&this, 1)?;
    let index = match int_arg(&key) {
        IntArg::Int(i) if i >= 1 && (i as u64) <= span.len() as u64 => i as usize - 1,
        IntArg::Int(_) | IntArg::NotInteger => return Err(erange()),
        IntArg::Absent | IntArg::WrongType => return Err(ErrorCode::generic(libc::EPERM).into()),
    };
    let byte = match int_arg(&value) {
        IntArg::Int(v) => u8::try_from(v).map_err(|_| einval(3))?,
        _ => return Err(einval(3)),
    };
    span.set(index, byte);
    Ok(())
}

/// `bs:slice([start=1[, end=#bs]])`
fn lua_slice(lua: &Lua, (this, start, end): (Value, Value, Value)) -> mlua::Result<AnyUserData> {
    let span = span_arg(&this, 1)?;
    let start = match int_arg(&start) {
        IntArg::Absent => 1,
        IntArg::Int(n) => n,
        IntArg::NotInteger => return Err(erange()),
        IntArg::WrongType => return Err(einval(2)),
    };
    let end = match int_arg(&end) {
        IntArg::Absent => span.len() as i64,
        IntArg::Int(n) => n,
        IntArg::NotInteger => return Err(erange()),
        IntArg::WrongType => return Err(einval(3)),
    };
    if start < 1 || start - 1 > end || end as u64 > span.capacity() as u64 {
        return Err(erange());
    }
    let first = (start - 1) as usize;
    let len = (end - (start - 1)) as usize;
    push_span(lua, span.subview(first, len))
}

/// `bs:copy(src)` → number of bytes copied.
fn lua_copy(_: &Lua, (this, src): (Value, Value)) -> mlua::Result<usize> {
    let dst = span_arg(&this, 1)?;
    let src = Source::from_value(&src, 2, false)?;
    let count = dst.len().min(src.len());
    match &src {
        Source::Empty => {}
        Source::Str(s) => {
            let bytes = s.as_bytes();
            // SAFETY: `bytes` is the live Lua string; `count <= dst.len()`.
            unsafe { dst.write_raw(0, bytes.as_ptr(), count) }
        }
        // SAFETY: `s` is a live view with at least `count` bytes;
        // `count <= dst.len()`; overlap is handled by memmove.
        Source::Span(s) => unsafe { dst.write_raw(0, s.ptr(), count) },
    }
    Ok(count)
}

/// Collects the byte arguments `args[i]`, numbering them from `first_arg`.
fn sources(args: &[Value], first_arg: i32) -> mlua::Result<Vec<Source>> {
    args.iter()
        .zip(first_arg..)
        .map(|(v, arg)| Source::from_value(v, arg, true))
        .collect()
}

fn total_len(base: usize, sources: &[Source]) -> mlua::Result<usize> {
    sources
        .iter()
        .try_fold(base, |acc, s| acc.checked_add(s.len()))
        .ok_or_else(enomem)
}

/// `bs:append(...)`
fn lua_append_member(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    let args: Vec<Value> = args.into_vec();
    let this = args.first().cloned().unwrap_or(Value::Nil);
    let span = span_arg(&this, 1)?;
    if args.len() <= 1 {
        return Ok(this);
    }
    let tail = sources(&args[1..], 2)?;
    let total = total_len(span.len(), &tail)?;

    let (dst, tail) = if total <= span.capacity() {
        // In place: the bytes after `#bs` get overwritten. A source that is
        // a view of the same storage could overlap the bytes being written
        // (or be changed by an earlier argument's copy), so such arguments
        // are snapshotted first to get plain concatenation semantics.
        let tail = if tail.iter().any(|s| s.shares_storage_with(&span)) {
            // Allocation failure is ENOMEM, never an abort.
            let joined_len = total - span.len();
            let joined = SpanRef::try_new_zeroed(joined_len, joined_len).ok_or_else(enomem)?;
            let mut at = 0;
            for s in &tail {
                s.write_into(&joined, at);
                at += s.len();
            }
            vec![Source::Span(joined)]
        } else {
            tail
        };
        (span.subview(0, total), tail)
    } else {
        let dst = SpanRef::try_new_zeroed(total, total).ok_or_else(enomem)?;
        Source::Span(span.clone()).write_into(&dst, 0);
        (dst, tail)
    };

    let mut at = span.len();
    for s in &tail {
        s.write_into(&dst, at);
        at += s.len();
    }
    push_span(lua, dst).map(Value::UserData)
}

/// `byte_span.append(...)`
fn lua_append_nonmember(lua: &Lua, args: MultiValue) -> mlua::Result<AnyUserData> {
    let args: Vec<Value> = args.into_vec();
    let parts = sources(&args, 1)?;
    let total = total_len(0, &parts)?;
    let dst = SpanRef::try_new_zeroed(total, total).ok_or_else(enomem)?;
    let mut at = 0;
    for s in &parts {
        s.write_into(&dst, at);
        at += s.len();
    }
    push_span(lua, dst)
}

/// `bs:starts_with(s)`
fn lua_starts_with(_: &Lua, (this, s): (Value, Value)) -> mlua::Result<bool> {
    let span = span_arg(&this, 1)?;
    let s = Source::from_value(&s, 2, false)?;
    Ok(span.with_bytes(|hay| s.with_bytes(|p| hay.starts_with(p))))
}

/// `bs:ends_with(s)`
fn lua_ends_with(_: &Lua, (this, s): (Value, Value)) -> mlua::Result<bool> {
    let span = span_arg(&this, 1)?;
    let s = Source::from_value(&s, 2, false)?;
    Ok(span.with_bytes(|hay| s.with_bytes(|p| hay.ends_with(p))))
}

/// Shared argument handling of `find`, `find_first_of`, `find_first_not_of`:
/// `(self, needle|set, [pos=1])`, `pos` in `1..=#bs+1` (`#bs+1` → nil).
/// `search(haystack, needle, from0)` returns a 0-based index.
fn forward_search(
    (this, needle, pos): (Value, Value, Value),
    search: impl FnOnce(&[u8], &[u8], usize) -> Option<usize>,
) -> mlua::Result<Option<usize>> {
    let span = span_arg(&this, 1)?;
    let needle = Source::from_value(&needle, 2, true)?;
    let pos = match int_arg(&pos) {
        IntArg::Absent => 1,
        IntArg::Int(n) => n,
        IntArg::NotInteger => return Err(erange()),
        IntArg::WrongType => return Err(einval(3)),
    };
    if pos < 1 || (pos - 1) as u64 > span.len() as u64 {
        return Err(erange());
    }
    let from = (pos - 1) as usize;
    if from == span.len() {
        return Ok(None);
    }
    let found = span.with_bytes(|hay| needle.with_bytes(|n| search(hay, n, from)));
    Ok(found.map(|i| i + 1))
}

/// Shared argument handling of `rfind`, `find_last_of`, `find_last_not_of`:
/// `(self, needle|set, [pos=#bs])`, `pos` in `0..=#bs` (`0` → nil).
/// `search(haystack, needle, upto0)` returns a 0-based index `<= upto0`.
fn backward_search(
    (this, needle, pos): (Value, Value, Value),
    search: impl FnOnce(&[u8], &[u8], usize) -> Option<usize>,
) -> mlua::Result<Option<usize>> {
    let span = span_arg(&this, 1)?;
    let needle = Source::from_value(&needle, 2, true)?;
    let pos = match int_arg(&pos) {
        IntArg::Absent => span.len() as i64,
        IntArg::Int(n) => n,
        IntArg::NotInteger => return Err(erange()),
        IntArg::WrongType => return Err(einval(3)),
    };
    if pos < 0 || pos as u64 > span.len() as u64 {
        return Err(erange());
    }
    if pos == 0 {
        return Ok(None);
    }
    let upto = (pos - 1) as usize;
    let found = span.with_bytes(|hay| needle.with_bytes(|n| search(hay, n, upto)));
    Ok(found.map(|i| i + 1))
}

/// `bs:trimmed([lws])`
fn lua_trimmed(lua: &Lua, (this, lws): (Value, Value)) -> mlua::Result<AnyUserData> {
    let span = span_arg(&this, 1)?;
    let lws = match lws {
        Value::Nil => None,
        other => Some(Source::from_value(&other, 2, false)?),
    };
    let set = match &lws {
        None => byte_set(DEFAULT_LWS),
        Some(s) => s.with_bytes(byte_set),
    };
    let bounds = span.with_bytes(|b| {
        let first = b.iter().position(|c| !set[*c as usize])?;
        let last = b.iter().rposition(|c| !set[*c as usize])?;
        Some((first, last))
    });
    match bounds {
        Some((first, last)) => push_span(lua, span.subview(first, last - first + 1)),
        // Emilua returns a fresh empty span (capacity 0) when nothing is left.
        None => push_span(lua, SpanRef::new_zeroed(0, 0)),
    }
}

// ---------------------------------------------------------------------------
// Byte-string algorithms (0-based, std::string_view semantics)

fn byte_set(chars: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    for &c in chars {
        set[c as usize] = true;
    }
    set
}

/// First occurrence of `pat` starting at or after `from` (`from < hay.len()`).
fn find_sub(hay: &[u8], pat: &[u8], from: usize) -> Option<usize> {
    if pat.is_empty() {
        return Some(from);
    }
    hay.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|i| i + from)
}

/// Last occurrence of `pat` starting at or before `upto` (`upto < hay.len()`).
fn rfind_sub(hay: &[u8], pat: &[u8], upto: usize) -> Option<usize> {
    let last_start = hay.len().checked_sub(pat.len())?.min(upto);
    (0..=last_start)
        .rev()
        .find(|&i| &hay[i..i + pat.len()] == pat)
}

/// First index `>= from` whose byte is (`member`) / is not in `set`.
fn find_forward(hay: &[u8], from: usize, set: &[bool; 256], member: bool) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|c| set[*c as usize] == member)
        .map(|i| i + from)
}

/// Last index `<= upto` whose byte is (`member`) / is not in `set`.
fn find_backward(hay: &[u8], upto: usize, set: &[bool; 256], member: bool) -> Option<usize> {
    let end = upto.checked_add(1)?.min(hay.len());
    hay[..end].iter().rposition(|c| set[*c as usize] == member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::FromLuaMulti;

    /// Storages of 4 KiB or more start on a 4 KiB boundary (glibc puts
    /// allocations of 128 KiB or more at page + 16, where the kernel's
    /// copies into them are ~3x slower), whatever the allocator gave, and
    /// hold exactly their size in zeroed, writable bytes.
    #[test]
    fn large_storages_start_on_a_page_boundary() {
        for size in [4096, 65536, 65536 + 1, 131072, 1 << 20, (1 << 20) + 17] {
            // Some small allocations in between move the allocator around.
            let _small: Vec<SpanRef> = (0..3)
                .map(|i| SpanRef::new_zeroed(i * 24 + 1, 100))
                .collect();
            let mut span = SpanRef::new_zeroed(size, size);
            let (ptr, len) = span.raw_parts();
            assert_eq!(len, size);
            assert_eq!(ptr as usize % 4096, 0, "a {size}-byte storage at {ptr:p}");
            assert!(span.to_vec().iter().all(|&b| b == 0));
            // SAFETY: the last byte of the storage, which `span` keeps alive.
            unsafe { ptr.add(size - 1).write(7) };
            assert_eq!(span.to_vec()[size - 1], 7);
        }
        // Small ones are not padded.
        let mut small = SpanRef::new_zeroed(100, 4095);
        assert_eq!(small.raw_parts().1, 100);
    }

    fn vm() -> Lua {
        let lua = Lua::new();
        register(&lua).unwrap();
        lua.globals()
            .set(
                "decode",
                lua.create_function(crate::modules::error::decode).unwrap(),
            )
            .unwrap();
        lua.load(
            r#"
            function E(f, ...)
                local ok, e = pcall(f, ...)
                if ok then error("expected an error", 2) end
                return decode(e)
            end
            "#,
        )
        .exec()
        .unwrap();
        lua
    }

    fn eval<R: FromLuaMulti>(lua: &Lua, code: &str) -> R {
        lua.load(code)
            .eval()
            .unwrap_or_else(|e| panic!("{code}: {e}"))
    }

    /// `(category, code, arg)` of the error raised by the Lua statement.
    fn err(lua: &Lua, stmt: &str) -> (String, i64, Option<i64>) {
        eval(lua, &format!("return E(function() {stmt} end)"))
    }

    fn einval_at(arg: i64) -> (String, i64, Option<i64>) {
        ("generic".into(), libc::EINVAL.into(), Some(arg))
    }

    fn erange() -> (String, i64, Option<i64>) {
        ("generic".into(), libc::ERANGE.into(), None)
    }

    #[test]
    fn new_len_capacity_index() {
        let lua = vm();
        let r: (i64, i64, i64, i64, String) = eval(
            &lua,
            "local b = byte_span.new(3, 8) \
             return #b, b.capacity, b[1], b[3], tostring(b)",
        );
        assert_eq!(r, (3, 8, 0, 0, "\0\0\0".into()));
        let r: (i64, i64) = eval(&lua, "local b = byte_span.new(4) return #b, b.capacity");
        assert_eq!(r, (4, 4));
        let r: (i64, i64) = eval(&lua, "local b = byte_span.new(0) return #b, b.capacity");
        assert_eq!(r, (0, 0));
        // Integral floats are integers.
        let r: i64 = eval(&lua, "return #byte_span.new(2.0, 3.0)");
        assert_eq!(r, 2);
    }

    #[test]
    fn new_errors() {
        let lua = vm();
        assert_eq!(err(&lua, "byte_span.new()"), einval_at(1));
        assert_eq!(err(&lua, "byte_span.new(-1)"), einval_at(1));
        assert_eq!(err(&lua, "byte_span.new(1.5)"), einval_at(1));
        assert_eq!(err(&lua, "byte_span.new('3')"), einval_at(1));
        assert_eq!(err(&lua, "byte_span.new(1, -1)"), einval_at(2));
        assert_eq!(err(&lua, "byte_span.new(1, 2.5)"), einval_at(2));
        assert_eq!(err(&lua, "byte_span.new(1, {})"), einval_at(2));
        assert_eq!(err(&lua, "byte_span.new(5, 3)"), einval_at(2));
        assert_eq!(err(&lua, "byte_span.new(0/0)"), einval_at(1));
    }

    /// Runs Lua statements that check themselves with `assert`.
    fn check(lua: &Lua, code: &str) {
        lua.load(code)
            .exec()
            .unwrap_or_else(|e| panic!("{code}\n=> {e}"));
    }

    fn bad_index() -> (String, i64, Option<i64>) {
        ("emilua.core".into(), 8, None)
    }

    fn eperm() -> (String, i64, Option<i64>) {
        ("generic".into(), libc::EPERM.into(), None)
    }

    #[test]
    fn index_read_write() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.new(3)
            b[1] = 65 b[2] = 255 b[3.0] = 0x43
            assert(b[1] == 65 and b[2] == 255 and b[3] == 67)
            assert(tostring(b) == "A\255C")
            b[2] = 0
            assert(tostring(b) == "A\0C")
            "#,
        );
    }

    #[test]
    fn index_errors() {
        let lua = vm();
        check(&lua, "b = byte_span.new(3, 5)");
        assert_eq!(err(&lua, "return b[0]"), erange());
        assert_eq!(err(&lua, "return b[4]"), erange()); // within capacity, past #b
        assert_eq!(err(&lua, "return b[-1]"), erange());
        assert_eq!(err(&lua, "return b[1.5]"), erange());
        assert_eq!(err(&lua, "return b.foo"), bad_index());
        assert_eq!(err(&lua, "return b.new"), bad_index());
        assert_eq!(err(&lua, "return b[true]"), bad_index());
        assert_eq!(err(&lua, "return b['1']"), bad_index());
        assert_eq!(err(&lua, "b[0] = 1"), erange());
        assert_eq!(err(&lua, "b[4] = 1"), erange());
        assert_eq!(err(&lua, "b[0.5] = 1"), erange());
        assert_eq!(err(&lua, "b[1] = 256"), einval_at(3));
        assert_eq!(err(&lua, "b[1] = -1"), einval_at(3));
        assert_eq!(err(&lua, "b[1] = 1.5"), einval_at(3));
        assert_eq!(err(&lua, "b[1] = '1'"), einval_at(3));
        assert_eq!(err(&lua, "b[1] = nil"), einval_at(3));
        assert_eq!(err(&lua, "b.capacity = 9"), eperm());
        assert_eq!(err(&lua, "b.x = 1"), eperm());
        assert_eq!(err(&lua, "b[false] = 1"), eperm());
        check(&lua, "assert(tostring(b) == '\\0\\0\\0')");
    }

    #[test]
    fn metatable_len_eq_tostring() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.new(4, 6)
            assert(getmetatable(b) == "byte_span")
            assert(not pcall(setmetatable, b, {}))
            assert(#b == 4)
            assert(b == b)
            assert(b == b:slice())          -- same storage, offset, len
            assert(b ~= b:slice(1, 3))      -- shorter
            assert(b ~= b:slice(2, 5))      -- same len, other offset
            assert(b:slice(2) == b:slice(2))
            assert(byte_span.new(4) ~= byte_span.new(4)) -- equal bytes, other memory
            assert(b ~= "\0\0\0\0")
            assert(tostring(byte_span.new(0)) == "")
            assert(tostring(byte_span.append("xyz")) == "xyz")
            "#,
        );
    }

    #[test]
    fn slice_shares_and_grows() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.append("abcdef")
            local s = b:slice(2, 4)
            assert(tostring(s) == "bcd" and #s == 3 and s.capacity == 5)
            s[1] = 66
            assert(tostring(b) == "aBcdef")
            local t = s:slice(2)            -- end defaults to #s
            assert(tostring(t) == "cd" and t.capacity == 4)
            assert(tostring(s:slice(1, 5)) == "Bcdef") -- grows past #s
            assert(tostring(b:slice(nil, 2)) == "aB")

            local g = byte_span.new(2, 5)
            local big = g:slice(1, 5)
            assert(#big == 5 and big.capacity == 5)
            big[5] = 9
            assert(g:slice(5, 5)[1] == 9)
            local e = g:slice(3)            -- start = #g + 1: empty
            assert(#e == 0 and e.capacity == 3)
            local z = g:slice(6, 5)         -- empty at the very end
            assert(#z == 0 and z.capacity == 0)
            "#,
        );
        check(&lua, "b = byte_span.new(2, 5)");
        assert_eq!(err(&lua, "b:slice(0)"), erange());
        assert_eq!(err(&lua, "b:slice(1, 6)"), erange());
        assert_eq!(err(&lua, "b:slice(3, 1)"), erange());
        assert_eq!(err(&lua, "b:slice(7, 6)"), erange());
        assert_eq!(err(&lua, "b:slice(1, -1)"), erange());
        assert_eq!(err(&lua, "b:slice(1.5)"), erange());
        assert_eq!(err(&lua, "b:slice(1, 2.5)"), erange());
        assert_eq!(err(&lua, "b:slice('1')"), einval_at(2));
        assert_eq!(err(&lua, "b:slice(1, {})"), einval_at(3));
        assert_eq!(err(&lua, "b.slice('x')"), einval_at(1));
        assert_eq!(err(&lua, "b.slice()"), einval_at(1));
    }

    #[test]
    fn copy() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.new(4)
            assert(b:copy("xy") == 2 and tostring(b) == "xy\0\0")
            assert(b:copy("123456") == 4 and tostring(b) == "1234")
            assert(b:copy("") == 0)
            assert(b:copy(byte_span.append("AB")) == 2 and tostring(b) == "AB34")

            -- overlapping copies behave like memmove
            local o = byte_span.append("abcdef")
            assert(o:slice(3):copy(o) == 4 and tostring(o) == "ababcd")
            o = byte_span.append("abcdef")
            assert(o:copy(o:slice(3)) == 4 and tostring(o) == "cdefef")
            assert(o:copy(o) == 6 and tostring(o) == "cdefef")
            "#,
        );
        check(&lua, "b = byte_span.new(2)");
        assert_eq!(err(&lua, "b:copy(1)"), einval_at(2));
        assert_eq!(err(&lua, "b:copy()"), einval_at(2));
        assert_eq!(err(&lua, "b:copy({})"), einval_at(2));
        assert_eq!(err(&lua, "b.copy('x', 'y')"), einval_at(1));
    }

    #[test]
    fn member_append() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.new(0, 10)
            b = b:append("AB")
            assert(tostring(b) == "AB" and b.capacity == 10)
            local c = b:append("CD", byte_span.append("E"), nil, "")
            assert(tostring(c) == "ABCDE" and #c == 5 and c.capacity == 10)
            assert(tostring(b) == "AB")     -- the receiver keeps its length
            c[1] = 120
            assert(b[1] == 120)             -- same memory
            assert(b:slice(1, 5) == c)

            local d = c:append("123456")    -- 11 > 10: new memory
            assert(tostring(d) == "xBCDE123456" and #d == 11 and d.capacity == 11)
            d[1] = 65
            assert(c[1] == 120)

            assert(rawequal(c:append(), c)) -- nothing to append: self

            -- sources viewing the destination's storage
            local s = byte_span.append("abc")
            local r = s:slice(1, 0):append(s) -- overlaps its own output
            assert(tostring(r) == "abc")
            local w = byte_span.new(3, 10)
            w:copy("abc")
            local x = w:slice(1, 1):append(w)
            assert(tostring(x) == "aabc" and x.capacity == 10)
            w = byte_span.new(3, 10)
            w:copy("abc")
            assert(tostring(w:append(w, w)) == "abcabcabc")
            "#,
        );
        check(&lua, "b = byte_span.new(1, 4)");
        assert_eq!(err(&lua, "b:append(1)"), einval_at(2));
        assert_eq!(err(&lua, "b:append('a', {})"), einval_at(3));
        assert_eq!(err(&lua, "b:append('a', 'b', true)"), einval_at(4));
        assert_eq!(err(&lua, "b.append('x')"), einval_at(1));
        assert_eq!(err(&lua, "b.append()"), einval_at(1));
        check(&lua, "assert(#b == 1)"); // failed appends write nothing visible
    }

    #[test]
    fn nonmember_append() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.new(2, 8)
            b:copy("cd")
            local a = byte_span.append("ab", b, nil, "e")
            assert(tostring(a) == "abcde" and #a == 5 and a.capacity == 5)
            a[3] = 0
            assert(b[1] == 99)              -- fresh memory
            local z = byte_span.append()
            assert(#z == 0 and z.capacity == 0)
            assert(#byte_span.append("", nil) == 0)
            local single = byte_span.append(b)
            assert(single ~= b and tostring(single) == "cd" and single.capacity == 2)
            "#,
        );
        assert_eq!(err(&lua, "byte_span.append(true)"), einval_at(1));
        assert_eq!(err(&lua, "byte_span.append('a', 1)"), einval_at(2));
        assert_eq!(err(&lua, "byte_span.append('a', 'b', {})"), einval_at(3));
    }

    #[test]
    fn starts_ends_with() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.append("hello world")
            assert(b:starts_with("hello") and b:starts_with("") and b:starts_with(b))
            assert(not b:starts_with("world") and not b:starts_with("hello world!"))
            assert(b:ends_with("world") and b:ends_with(byte_span.append("ld")))
            assert(not b:ends_with("hello"))
            assert(byte_span.new(0):starts_with("") and not byte_span.new(0):ends_with("x"))
            "#,
        );
        check(&lua, "b = byte_span.append('abc')");
        assert_eq!(err(&lua, "b:starts_with()"), einval_at(2));
        assert_eq!(err(&lua, "b:starts_with(1)"), einval_at(2));
        assert_eq!(err(&lua, "b:ends_with({})"), einval_at(2));
        assert_eq!(err(&lua, "b:ends_with(nil)"), einval_at(2));
        assert_eq!(err(&lua, "b.starts_with('abc', 'a')"), einval_at(1));
        assert_eq!(err(&lua, "b.ends_with('abc', 'c')"), einval_at(1));
    }

    #[test]
    fn find_rfind() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.append("hello world")  -- #b == 11
            assert(b:find("o") == 5)
            assert(b:find("o", 5) == 5)
            assert(b:find("o", 6) == 8)
            assert(b:find("o", 9) == nil)
            assert(b:find("world") == 7)
            assert(b:find(byte_span.append("lo w")) == 4)
            assert(b:find("xyz") == nil)
            assert(b:find("d", 11) == 11)
            assert(b:find("o", 12) == nil)   -- #b + 1
            assert(b:find("", 3) == 3)
            assert(b:find() == 1)            -- nil needle = empty
            assert(b:find("hello world!") == nil)

            assert(b:rfind("o") == 8)
            assert(b:rfind("o", 8) == 8)
            assert(b:rfind("o", 7) == 5)
            assert(b:rfind("lo", 4) == 4)    -- a match may extend past pos
            assert(b:rfind("h", 1) == 1)
            assert(b:rfind("o", 0) == nil)
            assert(b:rfind("xyz") == nil)
            assert(b:rfind("") == 11)
            assert(b:rfind("world", 7) == 7 and b:rfind("world", 6) == nil)
            assert(b:rfind(b) == 1)

            local e = byte_span.new(0)
            assert(e:find("a") == nil and e:find("") == nil and e:rfind("") == nil)
            "#,
        );
        check(&lua, "b = byte_span.append('hello world')");
        for m in ["find", "find_first_of", "find_first_not_of"] {
            assert_eq!(err(&lua, &format!("b:{m}('o', 0)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', 13)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', 1.5)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', '1')")), einval_at(3), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}(1)")), einval_at(2), "{m}");
            assert_eq!(
                err(&lua, &format!("b.{m}('abc', 'a')")),
                einval_at(1),
                "{m}"
            );
        }
        for m in ["rfind", "find_last_of", "find_last_not_of"] {
            assert_eq!(err(&lua, &format!("b:{m}('o', -1)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', 12)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', 0.5)")), erange(), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}('o', {{}})")), einval_at(3), "{m}");
            assert_eq!(err(&lua, &format!("b:{m}(true)")), einval_at(2), "{m}");
            assert_eq!(
                err(&lua, &format!("b.{m}('abc', 'a')")),
                einval_at(1),
                "{m}"
            );
        }
    }

    #[test]
    fn find_of_families() {
        let lua = vm();
        check(
            &lua,
            r#"
            local b = byte_span.append("hello world")
            assert(b:find_first_of("ol") == 3)
            assert(b:find_first_of("ol", 6) == 8)
            assert(b:find_first_of(byte_span.append("wd")) == 7)
            assert(b:find_first_of("") == nil and b:find_first_of("z") == nil)
            assert(b:find_first_of("d", 12) == nil)

            assert(b:find_last_of("ol") == 10)
            assert(b:find_last_of("ol", 9) == 8)
            assert(b:find_last_of("h", 1) == 1 and b:find_last_of("h", 0) == nil)
            assert(b:find_last_of("") == nil)

            assert(b:find_first_not_of("hel") == 5)
            assert(b:find_first_not_of("") == 1)
            assert(b:find_first_not_of("", 4) == 4)
            assert(b:find_first_not_of("helo wrd") == nil)

            assert(b:find_last_not_of("dl") == 9)
            assert(b:find_last_not_of("dlr", 11) == 8)
            assert(b:find_last_not_of("", 5) == 5)
            assert(b:find_last_not_of("helo wrd") == nil)

            assert(tostring(b) == "hello world")   -- never mutated
            "#,
        );
    }

    #[test]
    fn trimmed() {
        let lua = vm();
        check(
            &lua,
            "b = byte_span.append(' \\t\\f\\v hi there \\r\\n') \
             t = b:trimmed()",
        );
        check(
            &lua,
            r#"
            assert(tostring(t) == "hi there" and #t == 8)
            assert(t.capacity == b.capacity - 5)
            t[1] = 72
            assert(tostring(b:slice(6, 6)) == "H")   -- shares memory
            assert(tostring(b) == " \t\f\v Hi there \r\n")

            local c = byte_span.append("xxhiyy")
            assert(tostring(c:trimmed("xy")) == "hi")
            assert(tostring(c:trimmed(byte_span.append("x"))) == "hiyy")
            assert(tostring(c:trimmed("")) == "xxhiyy")
            assert(c:trimmed("") == c)

            local all = byte_span.append(" \n ")
            local e = all:trimmed()
            assert(#e == 0 and e.capacity == 0)
            assert(#byte_span.new(0):trimmed() == 0)
            "#,
        );
        assert_eq!(err(&lua, "b:trimmed(1)"), einval_at(2));
        assert_eq!(err(&lua, "b:trimmed({})"), einval_at(2));
        assert_eq!(err(&lua, "b.trimmed(' x ')"), einval_at(1));
    }

    #[test]
    fn rust_interface() {
        let lua = vm();
        let mut span = SpanRef::new_zeroed(3, 8);
        assert_eq!(
            (span.len(), span.capacity(), span.is_empty()),
            (3, 8, false)
        );
        assert_eq!(span.to_vec(), vec![0, 0, 0]);
        assert!(SpanRef::new_zeroed(0, 4).is_empty());

        let ud = push_span(&lua, span.clone()).unwrap();
        lua.globals().set("k", &ud).unwrap();

        // A write through raw_parts (as the kernel would) is seen by Lua.
        let (ptr, len) = span.raw_parts();
        assert_eq!(len, 3);
        // SAFETY: `ptr` points at the 3 bytes of `span`, alive here.
        unsafe { std::ptr::copy_nonoverlapping(b"xyz".as_ptr(), ptr, 3) };
        check(&lua, "assert(tostring(k) == 'xyz' and k.capacity == 8)");

        // Lua writes are seen through the SpanRef.
        check(&lua, "k[2] = 65");
        assert_eq!(span.to_vec(), b"xAz");

        let back = span_from_value(&Value::UserData(ud)).unwrap();
        assert!(back.same_view(&span));
        assert!(span_from_value(&Value::Integer(1)).is_none());
        let s = lua.create_string("abc").unwrap();
        assert!(span_from_value(&Value::String(s)).is_none());
        let other = lua.create_userdata(Other).unwrap();
        assert!(span_from_value(&Value::UserData(other)).is_none());

        let f = SpanRef::from_bytes(b"hello");
        assert_eq!(
            (f.len(), f.capacity(), f.to_vec()),
            (5, 5, b"hello".to_vec())
        );
        assert!(SpanRef::from_bytes(b"").is_empty());

        // Memory held by Rust survives the VM.
        let held = span_from_value(&lua.load("return k:slice(2, 3)").eval().unwrap()).unwrap();
        drop(lua);
        assert_eq!(held.to_vec(), b"Az");
        assert_eq!(held.capacity(), 7);
    }

    struct Other;
    impl UserData for Other {}

    #[test]
    fn register_returns_global_table() {
        let lua = Lua::new();
        let t = register(&lua).unwrap();
        let g: Table = lua.globals().get("byte_span").unwrap();
        assert_eq!(t, g);
        assert!(t.contains_key("new").unwrap() && t.contains_key("append").unwrap());
        // registering again is harmless
        register(&lua).unwrap();
        let r: String = lua
            .load("return getmetatable(byte_span.new(1))")
            .eval()
            .unwrap();
        assert_eq!(r, "byte_span");
    }

    #[test]
    fn allocation_failure_is_enomem() {
        let lua = vm();
        // 2^62 bytes can't be allocated (beyond isize::MAX / address space).
        assert_eq!(
            err(&lua, "byte_span.new(2^62)"),
            ("generic".into(), libc::ENOMEM.into(), None)
        );
    }
}
