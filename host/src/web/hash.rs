/// 64-bit FNV-1a of `bytes`: a stable content hash for ETags, the same on every build and machine. Shared
/// by `build.rs` (through `include!`) for the embedded files and by [`super::assets`] for files served
/// from a folder.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
