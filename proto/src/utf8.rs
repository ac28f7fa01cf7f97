//! Streaming UTF-8 validation for text messages whose code points may be split across reads and
//! fragments (RFC 6455 §8.1: fail fast). No I/O, no allocation.

/// Validates a byte stream fed in arbitrary pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Bytes of a code point that the previous piece left incomplete.
    partial: [u8; 4],
    partial_len: usize,
}

/// The input can no longer be valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// Accepts the next piece; fails as soon as no continuation could make the stream valid.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.partial_len > 0 {
            // Complete the carried code point one byte at a time.
            let need = sequence_len(self.partial[0]).ok_or(InvalidUtf8)?;
            while self.partial_len < need {
                let Some((&b, rest)) = bytes.split_first() else {
                    return self.check_prefix();
                };
                self.partial[self.partial_len] = b;
                self.partial_len += 1;
                bytes = rest;
                self.check_prefix()?;
            }
            if std::str::from_utf8(&self.partial[..need]).is_err() {
                return Err(InvalidUtf8);
            }
            self.partial_len = 0;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// The message ended: a pending partial code point is an error. Resets for the next message.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let pending = self.partial_len;
        self.partial_len = 0;
        if pending == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// Fails when the carried bytes can never start a valid code point.
    fn check_prefix(&self) -> Result<(), InvalidUtf8> {
        match std::str::from_utf8(&self.partial[..self.partial_len]) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => Ok(()),
            Err(_) => Err(InvalidUtf8),
        }
    }
}

/// Length of the sequence a lead byte starts, if it can start one.
fn sequence_len(lead: u8) -> Option<usize> {
    match lead {
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(pieces: &[&[u8]]) -> bool {
        let mut v = Utf8Validator::new();
        pieces.iter().all(|p| v.feed(p).is_ok()) && v.finish().is_ok()
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"hello",
        "κόσμε".as_bytes(),
        "€ and 𝄞 and 中文".as_bytes(),
        &[0xF0, 0x9F, 0x98, 0x80],
        &[0xC0, 0x80],             // overlong NUL
        &[0xE0, 0x80, 0xAF],       // overlong '/'
        &[0xED, 0xA0, 0x80],       // surrogate
        &[0xF4, 0x90, 0x80, 0x80], // above U+10FFFF
        &[0xF5, 0x80, 0x80, 0x80],
        &[0xCE, 0xBA, 0xE1],       // truncated at the end
        &[0xCE, 0xBA, 0xE1, 0x41], // truncated, then a bad byte
        &[0x80],
        &[0xFF],
        &[0x61, 0xF0, 0x9F, 0x98],
    ];

    #[test]
    fn every_split_agrees_with_std() {
        for sample in SAMPLES {
            let expected = std::str::from_utf8(sample).is_ok();
            for i in 0..=sample.len() {
                for j in i..=sample.len() {
                    let got = streamed(&[&sample[..i], &sample[i..j], &sample[j..]]);
                    assert_eq!(got, expected, "{sample:x?} split at {i},{j}");
                }
            }
            let bytewise: Vec<&[u8]> = sample.chunks(1).collect();
            assert_eq!(streamed(&bytewise), expected, "{sample:x?} byte by byte");
        }
    }

    #[test]
    fn fails_fast_on_the_bad_byte() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xED]).is_ok());
        assert_eq!(v.feed(&[0xA0]), Err(InvalidUtf8));
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xF0, 0x9F]).is_ok());
        assert_eq!(v.feed(&[0x41]), Err(InvalidUtf8));
    }

    #[test]
    fn finish_resets() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xE2, 0x82]).unwrap();
        assert!(v.finish().is_err());
        v.feed(b"ok").unwrap();
        assert!(v.finish().is_ok());
    }
}
