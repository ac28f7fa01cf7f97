//! RFC 6455 §5.3 masking: XOR with a 4-byte key, resumable at any offset for streamed payloads.
//! No I/O.

/// XORs `buf` with `key`, starting at key position `offset % 4`. Applying it twice restores the bytes.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let shift = offset % 4;
    let rotated = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    // Eight bytes at a time; each chunk starts at a multiple of 8, so the key phase is the same.
    let word = u64::from_ne_bytes([
        rotated[0], rotated[1], rotated[2], rotated[3], rotated[0], rotated[1], rotated[2],
        rotated[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= rotated[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_reference() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
                apply_mask(&mut fast, key, offset);
                assert_eq!(fast, data);
            }
        }
    }

    #[test]
    fn rfc_example() {
        // RFC 6455 §5.7: masked "Hello".
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    #[test]
    fn split_chunks_resume() {
        let key = [1, 2, 3, 4];
        let mut whole = *b"0123456789abcdefghij";
        let mut split = whole;
        apply_mask(&mut whole, key, 0);
        let (a, b) = split.split_at_mut(7);
        apply_mask(a, key, 0);
        apply_mask(b, key, 7);
        assert_eq!(whole, split);
    }
}
