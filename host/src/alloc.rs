//! The process's allocator: mimalloc, for Rust's allocations and, through
//! its `override` feature, for the C and C++ libraries linked in as well
//! (librdkafka allocates and frees a buffer per message it fetches or
//! sends; RocksDB allocates per block and per iterator).

use std::ffi::{c_int, c_long};

/// Every process that runs Eddy allocates with mimalloc: a record's way
/// through a task allocates and frees small buffers by the million, where
/// glibc's allocator spent about a quarter of a windowed count's time (and
/// 17% of a word count's on Kafka, inside librdkafka).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit`: its place in mimalloc 3's `mi_option_t`
/// (`mimalloc.h`; the Rust bindings do not name it).
const ARENA_EAGER_COMMIT: c_int = 4;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg(test)]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Sets mimalloc's options before the process allocates (see
/// [`SET_OPTIONS`]). Arenas are committed as they are used, not as they are
/// reserved: eagerly committed arenas kept a Kafka word count at 161-169 MB
/// of resident memory instead of 111 MB, for the same CPU.
extern "C" fn set_options() {
    // SAFETY: mi_option_set only writes mimalloc's option table, which is
    // static and safe to write before mimalloc initializes.
    unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

/// Runs [`set_options`] among the first constructors of the executable:
/// before mimalloc's own (priority 101) and the C++ static initializers of
/// RocksDB, which allocate.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static SET_OPTIONS: extern "C" fn() = set_options;

#[cfg(test)]
mod tests {
    #[test]
    fn arenas_are_committed_as_they_are_used() {
        // SAFETY: reads mimalloc's option table.
        assert_eq!(unsafe { super::mi_option_get(super::ARENA_EAGER_COMMIT) }, 0);
    }
}
