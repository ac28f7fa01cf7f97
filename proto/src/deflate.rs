//! permessage-deflate (RFC 7692): the client's offers, the rules a server's response must follow
//! (§7.1), and the streaming inflater that lets wsgate check compressed messages without buffering
//! them (§7.2). No I/O.

use flate2::{Decompress, FlushDecompress, Status};

pub const NAME: &str = "permessage-deflate";

/// `client_max_window_bits` in an offer: absent, present without a value, or with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBits {
    Absent,
    Any,
    Max(u8),
}

/// One permessage-deflate offer of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: ClientBits,
}

/// What was agreed: how each side compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Agreed {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

/// `name; p1; p2=v` split into the name and (param, value) pairs; quoted values are unquoted.
fn split(element: &str) -> (&str, Vec<(&str, Option<&str>)>) {
    let mut parts = element.split(';').map(str::trim);
    let name = parts.next().unwrap_or("");
    let params = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        })
        .collect();
    (name, params)
}

fn window_bits(value: Option<&str>) -> Result<u8, ()> {
    match value.map(str::parse::<u8>) {
        Some(Ok(bits @ 8..=15)) => Ok(bits),
        _ => Err(()),
    }
}

/// Parses an extension element: `None` when it is not permessage-deflate, `Some(Err)` when its
/// parameters are not valid (§7.1: unknown, duplicated, or a bad value).
pub fn parse_offer(element: &str) -> Option<Result<Offer, ()>> {
    let (name, params) = split(element);
    if !name.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let mut offer = Offer {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: ClientBits::Absent,
    };
    let mut seen = Vec::new();
    for (key, value) in params {
        if seen.contains(&key) {
            return Some(Err(()));
        }
        seen.push(key);
        let ok = match (key, value) {
            ("server_no_context_takeover", None) => {
                offer.server_no_context_takeover = true;
                true
            }
            ("client_no_context_takeover", None) => {
                offer.client_no_context_takeover = true;
                true
            }
            ("server_max_window_bits", v) => window_bits(v)
                .map(|b| offer.server_max_window_bits = Some(b))
                .is_ok(),
            ("client_max_window_bits", None) => {
                offer.client_max_window_bits = ClientBits::Any;
                true
            }
            ("client_max_window_bits", v) => window_bits(v)
                .map(|b| offer.client_max_window_bits = ClientBits::Max(b))
                .is_ok(),
            _ => false,
        };
        if !ok {
            return Some(Err(()));
        }
    }
    Some(Ok(offer))
}

/// Checks a server's response element against the client's offers (§7.1): it must accept one of them.
pub fn accept_response(element: &str, offers: &[Offer]) -> Result<Agreed, String> {
    let (name, params) = split(element);
    if !name.eq_ignore_ascii_case(NAME) {
        return Err(format!("{name:?} was not offered"));
    }
    let mut agreed = Agreed::default();
    let mut seen = Vec::new();
    for (key, value) in &params {
        if seen.contains(key) {
            return Err(format!("duplicate parameter {key}"));
        }
        seen.push(*key);
        match (*key, value) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_max_window_bits", v) => {
                agreed.server_max_window_bits =
                    Some(window_bits(*v).map_err(|_| format!("bad server_max_window_bits {v:?}"))?)
            }
            ("client_max_window_bits", v) => {
                agreed.client_max_window_bits =
                    Some(window_bits(*v).map_err(|_| format!("bad client_max_window_bits {v:?}"))?)
            }
            (key, _) => return Err(format!("parameter {key:?} is not allowed")),
        }
    }
    let fits = |offer: &Offer| {
        // §7.1.1.1: the server may always decline to take over its own context.
        // §7.1.2.1: server_max_window_bits may be answered at or below what was offered.
        let server_bits = match (offer.server_max_window_bits, agreed.server_max_window_bits) {
            (Some(offered), Some(answered)) => answered <= offered,
            (Some(_), None) => false,
            (None, _) => true,
        };
        // §7.1.2.2: client_max_window_bits only if the client offered it, at or below its value.
        let client_bits = match (offer.client_max_window_bits, agreed.client_max_window_bits) {
            (_, None) => true,
            (ClientBits::Absent, Some(_)) => false,
            (ClientBits::Any, Some(_)) => true,
            (ClientBits::Max(offered), Some(answered)) => answered <= offered,
        };
        // §7.1.1.1: a client that asked the server not to take over context must be obeyed.
        let no_takeover = !offer.server_no_context_takeover || agreed.server_no_context_takeover;
        server_bits && client_bits && no_takeover
    };
    if offers.iter().any(fits) {
        Ok(agreed)
    } else {
        Err(format!("{element:?} does not answer any offer"))
    }
}

/// Inflates the compressed messages of one sender as they stream, to check their content and size
/// without keeping the output: each piece is inflated into a fixed scratch buffer and handed to `sink`.
pub struct Inflater {
    inner: Decompress,
    /// Reset the context after every message (the sender's `*_no_context_takeover`).
    reset_per_message: bool,
    /// The message's data ended its deflate stream with a final block (BFINAL).
    ended: bool,
}

/// The compressed data was not valid deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptData;

impl Inflater {
    pub fn new(reset_per_message: bool) -> Self {
        // Raw deflate with a 32 KiB window, which also inflates data made with any smaller window.
        Inflater {
            inner: Decompress::new(false),
            reset_per_message,
            ended: false,
        }
    }

    /// Inflates `input`, passing every piece of output to `sink`; `sink` returns false to stop early
    /// (the caller already failed the message).
    pub fn feed(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), CorruptData> {
        let mut out = [0u8; 4096];
        while !input.is_empty() || !self.ended {
            if self.ended {
                // Bytes after a final block would start a second stream inside one message.
                return Err(CorruptData);
            }
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress(input, &mut out, FlushDecompress::Sync)
                .map_err(|_| CorruptData)?;
            let consumed = (self.inner.total_in() - in_before) as usize;
            let produced = (self.inner.total_out() - out_before) as usize;
            input = &input[consumed..];
            self.ended = status == Status::StreamEnd;
            if produced > 0 && !sink(&out[..produced]) {
                return Ok(());
            }
            // All input taken and the output buffer not full: nothing more comes out for now.
            if input.is_empty() && produced < out.len() {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                return Err(CorruptData);
            }
        }
        Ok(())
    }

    /// The message ended: §7.2.2's tail `00 00 FF FF` completes its last block (unless the data ended
    /// the stream itself); the context is reset when the sender does not take it over (§7.1.1).
    pub fn finish_message(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), CorruptData> {
        let result = if self.ended {
            Ok(())
        } else {
            self.feed(&[0x00, 0x00, 0xFF, 0xFF], sink)
        };
        if self.reset_per_message || self.ended {
            self.inner.reset(false);
            self.ended = false;
        }
        result
    }
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
