//! Hex and SHA-256 hex, written once: config hashes (the StockPool contract, a ShopService's
//! config), keys that must not hold what they name (a throttled e-mail, a refresh token), ids in
//! trace headers.

use std::fmt::Write as _;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The hex of the first `bytes` bytes (at most 32) of SHA-256 over `data`.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let all = digest.as_ref();
    hex(&all[..bytes.min(all.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let full = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc", 32), full);
        assert_eq!(sha256_hex(b"abc", 8), &full[..16]);
        assert_eq!(sha256_hex(b"abc", 99), full);
    }
}
