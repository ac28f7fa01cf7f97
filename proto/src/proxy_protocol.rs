//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that an L4 load balancer puts before
//! the client's bytes: parsed from a byte slice, "need more" consumes nothing. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 line is at most 107 bytes with its CRLF.
const V1_MAX: usize = 107;

/// A complete header: the client's address, or `None` for a health check (`LOCAL`, `UNKNOWN`, or an
/// address family that is not TCP over IPv4/IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    pub source: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol v1 line")]
    BadV1,
    #[error("malformed PROXY protocol v2 header")]
    BadV2,
}

/// Parses a header at the front of `buf`: `Ok(None)` when more bytes are needed, else the header and
/// its length.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    if buf.len() < V2_SIGNATURE.len() {
        let v1 = b"PROXY ".starts_with(&buf[..buf.len().min(6)]);
        let v2 = V2_SIGNATURE.starts_with(buf);
        return if v1 || v2 {
            Ok(None)
        } else {
            Err(ProxyHeaderError::Missing)
        };
    }
    if buf.starts_with(&V2_SIGNATURE) {
        parse_v2(buf)
    } else if buf.starts_with(b"PROXY ") {
        parse_v1(buf)
    } else {
        Err(ProxyHeaderError::Missing)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyHeaderError::BadV1)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyHeaderError::BadV1)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, src_port, dst_port] => {
            let src: IpAddr = src.parse().map_err(|_| ProxyHeaderError::BadV1)?;
            let _: IpAddr = dst.parse().map_err(|_| ProxyHeaderError::BadV1)?;
            let port: u16 = src_port.parse().map_err(|_| ProxyHeaderError::BadV1)?;
            let _: u16 = dst_port.parse().map_err(|_| ProxyHeaderError::BadV1)?;
            if (*family == "TCP4") != src.is_ipv4() {
                return Err(ProxyHeaderError::BadV1);
            }
            Some(SocketAddr::new(src, port))
        }
        _ => return Err(ProxyHeaderError::BadV1),
    };
    Ok(Some((ProxyHeader { source }, end + 2)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    let Some(&[version_command, family, hi, lo]) = buf.get(12..16) else {
        return Ok(None);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyHeaderError::BadV2);
    }
    let total = 16 + usize::from(u16::from_be_bytes([hi, lo]));
    let Some(body) = buf.get(16..total) else {
        return Ok(None);
    };
    let source = match (version_command & 0x0F, family) {
        // LOCAL: the balancer's own connection (a health check).
        (0x0, _) => None,
        (0x1, 0x11) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        (0x1, 0x21) if body.len() >= 36 => {
            let octets: [u8; 16] = body[..16].try_into().expect("16 bytes");
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[32], body[33]]),
            ))
        }
        (0x1, 0x11 | 0x21) => return Err(ProxyHeaderError::BadV2),
        // UNSPEC, UDP or UNIX: no client address to use.
        (0x1, _) => None,
        _ => return Err(ProxyHeaderError::BadV2),
    };
    Ok(Some((ProxyHeader { source }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_prefix_needs_more(header: &[u8]) {
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), Ok(None), "prefix {cut}");
        }
    }

    #[test]
    fn v1_tcp4_and_tcp6() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let header_len = 41;
        let expected = ProxyHeader {
            source: Some("192.0.2.7:56324".parse().unwrap()),
        };
        assert_eq!(parse(line), Ok(Some((expected, header_len))));
        every_prefix_needs_more(&line[..header_len]);
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 80\r\n";
        let (h, n) = parse(v6).unwrap().unwrap();
        assert_eq!(h.source, Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(n, v6.len());
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Some((ProxyHeader { source: None }, 15)))
        );
    }

    #[test]
    fn v1_errors() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4\r\n"),
            Err(ProxyHeaderError::BadV1)
        );
        assert_eq!(
            parse(b"PROXY TCP4 ::1 ::1 1 2\r\n"),
            Err(ProxyHeaderError::BadV1)
        );
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 1.2.3.5 99999 1\r\n"),
            Err(ProxyHeaderError::BadV1)
        );
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(parse(&long), Err(ProxyHeaderError::BadV1));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v2_tcp4_tcp6_local_and_tlvs() {
        let mut body = vec![198, 51, 100, 9, 10, 0, 0, 1];
        body.extend_from_slice(&51000u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0xAA]); // a TLV, skipped
        let header = v2(1, 0x11, &body);
        let mut stream = header.clone();
        stream.extend_from_slice(b"GET /");
        let (h, n) = parse(&stream).unwrap().unwrap();
        assert_eq!(h.source, Some("198.51.100.9:51000".parse().unwrap()));
        assert_eq!(n, header.len());
        every_prefix_needs_more(&header);

        let mut body = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&7000u16.to_be_bytes());
        body.extend_from_slice(&80u16.to_be_bytes());
        let (h, _) = parse(&v2(1, 0x21, &body)).unwrap().unwrap();
        assert_eq!(h.source, Some("[2001:db8::7]:7000".parse().unwrap()));

        let (h, n) = parse(&v2(0, 0x00, &[])).unwrap().unwrap();
        assert_eq!((h.source, n), (None, 16));
    }

    #[test]
    fn v2_errors() {
        assert_eq!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyHeaderError::BadV2)
        );
        assert_eq!(parse(&v2(7, 0x11, &[0; 12])), Err(ProxyHeaderError::BadV2));
        let mut bad_version = v2(1, 0x11, &[0; 12]);
        bad_version[12] = 0x11;
        assert_eq!(parse(&bad_version), Err(ProxyHeaderError::BadV2));
    }
}
