//! The guest runtime behind the ABI exports: memory hand-over, panic reporting, and the
//! call into the author's function registered by [`crate::export!`]. The exported
//! functions are declared from the one list of exports in `abi`.

#[cfg(target_family = "wasm")]
use crate::abi;

#[cfg(target_family = "wasm")]
unsafe extern "Rust" {
    /// Defined by `segfn_sdk::export!` in the function's crate.
    safe fn __segfn_handle_envelope(input: &[u8]) -> Vec<u8>;
}

/// The ABI's exports, each calling the function of the same name below.
#[cfg(target_family = "wasm")]
mod exported {
    macro_rules! export_functions {
        ($( $(#[$doc:meta])* $konst:ident = $name:literal => fn $rust:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
            $(
                #[unsafe(export_name = $name)]
                extern "C" fn $rust($($arg: $ty),*) -> $ret {
                    super::$rust($($arg),*)
                }
            )*
        };
    }
    crate::abi::exports!(export_functions);
}

#[cfg(target_family = "wasm")]
fn abi_version() -> u32 {
    abi::VERSION
}

#[cfg(target_family = "wasm")]
fn alloc(len: u32) -> u32 {
    if len == 0 {
        // A non-null, never-dereferenced address for empty buffers.
        return 1;
    }
    match std::alloc::Layout::from_size_align(len as usize, 1) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) as usize as u32 },
        Err(_) => 0,
    }
}

#[cfg(target_family = "wasm")]
fn handle(ptr: u32, len: u32) -> u64 {
    std::panic::set_hook(Box::new(|info| crate::sys::report_panic(&info.to_string())));
    // SAFETY: the host wrote `len` bytes at `ptr`, memory it obtained from `alloc` with
    // the same size and alignment, so the Vec owns it as if it had allocated it.
    let input = unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len as usize, len as usize) };
    let output = __segfn_handle_envelope(&input).into_boxed_slice();
    let len = output.len() as u32;
    // The instance ends after this call; the host reads the leaked result first.
    let ptr = Box::into_raw(output) as *mut u8 as usize as u32;
    abi::pack(ptr, len)
}

/// Serialises a [`crate::abi::GuestResult`]; used by `export!`.
#[doc(hidden)]
pub fn encode_result(result: &crate::abi::GuestResult) -> Vec<u8> {
    serde_json::to_vec(result).unwrap_or_default()
}
