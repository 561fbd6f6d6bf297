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

/// The describe export for `F`: the [`crate::abi::Description`] JSON, leaked for the
/// host to read as `segfn_handle`'s result is. Used by `export!(F, schema)`.
#[cfg(all(target_family = "wasm", feature = "schema"))]
#[doc(hidden)]
pub fn describe<F: crate::Function>(name: &str, version: &str, description: &str) -> u64
where
    F::Settings: crate::JsonSchema,
{
    let description = crate::schema::description::<F::Settings>(name, version, description);
    let output = serde_json::to_vec(&description)
        .unwrap_or_default()
        .into_boxed_slice();
    let len = output.len() as u32;
    let ptr = Box::into_raw(output) as *mut u8 as usize as u32;
    abi::pack(ptr, len)
}

/// `export!(F, schema)`'s second half: the `segfn_describe` export, in the function's
/// crate (so that `CARGO_PKG_*` are the function's), on wasm only.
#[cfg(feature = "schema")]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_describe {
    ($function:ty) => {
        #[cfg(target_family = "wasm")]
        #[unsafe(export_name = $crate::__describe_export_name!())]
        extern "C" fn __segfn_describe() -> u64 {
            $crate::guest::describe::<$function>(
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
                ::core::env!("CARGO_PKG_DESCRIPTION"),
            )
        }
    };
}

/// Without the `schema` feature, `export!(F, schema)` says what is missing.
#[cfg(not(feature = "schema"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __export_describe {
    ($function:ty) => {
        ::core::compile_error!(
            "segfn_sdk::export!(F, schema) needs segfn-sdk's \"schema\" feature: in Cargo.toml, segfn-sdk = { ..., features = [\"schema\"] }"
        );
    };
}
