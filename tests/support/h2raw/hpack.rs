//! HPACK by hand (RFC 7541): an encoder that writes only literal fields without indexing and without
//! Huffman (§6.2.2), so every byte is what the test chose, and a decoder for a server's response
//! blocks: static and dynamic table, all literal forms, Huffman strings. No I/O.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// The static table (RFC 7541 Appendix A); index 1 is `STATIC[0]`.
pub const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The dynamic table size both sides start with (RFC 7540 §6.5.2, SETTINGS_HEADER_TABLE_SIZE).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block is refused.
#[derive(Debug, thiserror::Error)]
pub enum HpackError {
    #[error("the header block ends inside a field")]
    Truncated,
    #[error("an integer does not fit the decoder's 28 bits")]
    IntegerOverflow,
    #[error("index 0 is not a table entry (RFC 7541 §6.1)")]
    ZeroIndex,
    #[error("index {index} is past the static and dynamic tables ({len} entries)")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("a Huffman-coded string is invalid")]
    Huffman(#[source] HuffmanError),
    #[error("a header name or value is not UTF-8")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    #[error("a table size update to {size} exceeds the limit {limit} (RFC 7541 §6.3)")]
    TableSizeTooLarge { size: usize, limit: usize },
    #[error("a table size update follows a header field (RFC 7541 §4.2)")]
    SizeUpdateAfterField,
}

/// Appends `value` as an HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1); `flags` holds the
/// bits of the first byte above the prefix.
pub fn encode_int(value: usize, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// Appends a string literal without Huffman coding (H = 0, RFC 7541 §5.2).
pub fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    encode_int(bytes.len(), 7, 0x00, out);
    out.extend_from_slice(bytes);
}

/// Appends one "literal header field without indexing, new name" (RFC 7541 §6.2.2): nothing is added
/// to the peer's dynamic table, and names are sent exactly as given (uppercase included).
pub fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    encode_string(name, out);
    encode_string(value, out);
}

/// A header block of literal fields without indexing, in the order given.
pub fn encode_headers(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        encode_literal(name.as_bytes(), value.as_bytes(), &mut out);
    }
    out
}

/// Reads an integer with a `prefix`-bit prefix at `*at` (RFC 7541 §5.1) and moves `*at` past it.
pub fn decode_int(block: &[u8], at: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let max = (1usize << prefix) - 1;
    let first = *block.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        if shift > 21 {
            return Err(HpackError::IntegerOverflow);
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// The connection's decoding state: the dynamic table the server's encoder fills.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<(String, String)>,
    size: usize,
    max_size: usize,
    /// The SETTINGS_HEADER_TABLE_SIZE we announced: no size update may exceed it.
    limit: usize,
    /// How many Huffman-coded strings were decoded, so a test can show that path ran.
    pub huffman_strings: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_TABLE_SIZE)
    }
}

impl Decoder {
    /// A decoder for a connection on which we announced SETTINGS_HEADER_TABLE_SIZE = `limit`.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
            huffman_strings: 0,
        }
    }

    /// The dynamic table, newest first (index 62 first), and its size in RFC 7541 §4.1 octets.
    pub fn dynamic_table(&self) -> (&VecDeque<(String, String)>, usize) {
        (&self.table, self.size)
    }

    fn entry(&self, index: usize) -> Result<(String, String), HpackError> {
        let len = STATIC.len() + self.table.len();
        match index {
            0 => Err(HpackError::ZeroIndex),
            1..=61 => {
                let (n, v) = STATIC[index - 1];
                Ok((n.to_owned(), v.to_owned()))
            }
            _ => self
                .table
                .get(index - 62)
                .cloned()
                .ok_or(HpackError::IndexOutOfRange { index, len }),
        }
    }

    /// Adds an entry, evicting the oldest until it fits (RFC 7541 §4.4); one larger than the whole
    /// table empties it.
    fn insert(&mut self, name: String, value: String) {
        let size = name.len() + value.len() + 32;
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.table.push_front((name, value));
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => self.size = 0,
            }
        }
    }

    fn string(&mut self, block: &[u8], at: &mut usize) -> Result<String, HpackError> {
        let huffman = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = decode_int(block, at, 7)?;
        let end = at.checked_add(len).ok_or(HpackError::Truncated)?;
        let raw = block.get(*at..end).ok_or(HpackError::Truncated)?;
        *at = end;
        let bytes = if huffman {
            self.huffman_strings += 1;
            huffman::decode(raw).map_err(HpackError::Huffman)?
        } else {
            raw.to_vec()
        };
        String::from_utf8(bytes).map_err(HpackError::NotUtf8)
    }
}

/// Decodes one whole header block (HEADERS plus any CONTINUATION fragments, joined) in order,
/// updating `decoder`'s dynamic table as the server's encoder did.
pub fn decode_headers(
    decoder: &mut Decoder,
    block: &[u8],
) -> Result<Vec<(String, String)>, HpackError> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < block.len() {
        let first = block[at];
        if first & 0x80 != 0 {
            // Indexed header field (§6.1).
            let index = decode_int(block, &mut at, 7)?;
            fields.push(decoder.entry(index)?);
        } else if first & 0xe0 == 0x20 {
            // Dynamic table size update (§6.3), only before the first field (§4.2).
            if !fields.is_empty() {
                return Err(HpackError::SizeUpdateAfterField);
            }
            let size = decode_int(block, &mut at, 5)?;
            if size > decoder.limit {
                return Err(HpackError::TableSizeTooLarge {
                    size,
                    limit: decoder.limit,
                });
            }
            decoder.max_size = size;
            decoder.evict_to(size);
        } else {
            // Literal with incremental indexing (01, §6.2.1), without indexing (0000, §6.2.2) or
            // never indexed (0001, §6.2.3); index 0 means a new name follows.
            let (prefix, indexing) = if first & 0x40 != 0 {
                (6, true)
            } else {
                (4, false)
            };
            let index = decode_int(block, &mut at, prefix)?;
            let name = if index == 0 {
                decoder.string(block, &mut at)?
            } else {
                decoder.entry(index)?.0
            };
            let value = decoder.string(block, &mut at)?;
            if indexing {
                decoder.insert(name.clone(), value.clone());
            }
            fields.push((name, value));
        }
    }
    Ok(fields)
}
