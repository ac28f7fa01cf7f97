//! The filters of `/tunnels` and `/tunnels/close`: route, client address or CIDR, upstream,
//! endpoint, and a limit on how many are listed.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::relay::TunnelInfo;

/// A decoded `name=value` of a query string.
pub type Pair = (String, String);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub route: Option<String>,
    /// The client's address (a host address is a /32 or /128).
    pub client: Option<IpNet>,
    pub upstream: Option<String>,
    pub endpoint: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("client: {0:?} is not an IP address or CIDR")]
    Client(String),
    #[error("limit: {0:?} is not a whole number")]
    Limit(String),
    #[error("{0}: empty value")]
    Empty(&'static str),
}

impl Filter {
    /// The filters among a query's pairs, and the pairs that are not filters', in order.
    pub fn parse(query: &[Pair]) -> Result<(Filter, Vec<&Pair>), FilterError> {
        let mut filter = Filter::default();
        let mut rest = Vec::new();
        for pair in query {
            if !filter.set(&pair.0, &pair.1)? {
                rest.push(pair);
            }
        }
        Ok((filter, rest))
    }

    /// Takes one query parameter; `Ok(false)` when `key` is not a filter's.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, FilterError> {
        let text = |name: &'static str| {
            if value.is_empty() {
                Err(FilterError::Empty(name))
            } else {
                Ok(Some(value.to_owned()))
            }
        };
        match key {
            "route" => self.route = text("route")?,
            "upstream" => self.upstream = text("upstream")?,
            "endpoint" => self.endpoint = text("endpoint")?,
            "client" => self.client = Some(parse_client(value)?),
            "limit" => {
                self.limit = Some(
                    value
                        .parse()
                        .map_err(|_| FilterError::Limit(value.to_owned()))?,
                )
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// True when some filter other than the limit is set.
    pub fn selects(&self) -> bool {
        self.route.is_some()
            || self.client.is_some()
            || self.upstream.is_some()
            || self.endpoint.is_some()
    }

    pub fn matches(&self, info: &TunnelInfo) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.route, &info.route)
            && same(&self.upstream, &info.upstream)
            && same(&self.endpoint, &info.endpoint)
            && self
                .client
                .is_none_or(|net| net.contains(&canonical(info.client.ip())))
    }
}

fn parse_client(value: &str) -> Result<IpNet, FilterError> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| FilterError::Client(value.to_owned()))
}

/// An IPv4 client seen on a dual-stack socket (`::ffff:a.b.c.d`) matches IPv4 filters.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Transport;

    fn info(route: &str, client: &str, upstream: &str, endpoint: &str) -> TunnelInfo {
        TunnelInfo {
            id: 1,
            route: route.into(),
            listener: "public".into(),
            client: client.parse().unwrap(),
            upstream: upstream.into(),
            endpoint: endpoint.into(),
            transport: Transport::H1,
            subprotocol: None,
            extensions: None,
            subject: None,
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for (k, v) in pairs {
            assert!(f.set(k, v)?, "{k} is a filter");
        }
        Ok(f)
    }

    #[test]
    fn each_filter_matches_its_field() {
        let t = info("chat", "10.1.2.3:5000", "chat_pool", "127.0.0.1:9001");
        assert!(Filter::default().matches(&t));
        assert!(filter(&[("route", "chat")]).unwrap().matches(&t));
        assert!(!filter(&[("route", "game")]).unwrap().matches(&t));
        assert!(filter(&[("upstream", "chat_pool")]).unwrap().matches(&t));
        assert!(!filter(&[("upstream", "other")]).unwrap().matches(&t));
        assert!(filter(&[("endpoint", "127.0.0.1:9001")])
            .unwrap()
            .matches(&t));
        assert!(!filter(&[("endpoint", "127.0.0.1:9002")])
            .unwrap()
            .matches(&t));
        assert!(filter(&[("client", "10.1.2.3")]).unwrap().matches(&t));
        assert!(!filter(&[("client", "10.1.2.4")]).unwrap().matches(&t));
        assert!(filter(&[("client", "10.1.0.0/16")]).unwrap().matches(&t));
        assert!(!filter(&[("client", "10.2.0.0/16")]).unwrap().matches(&t));
        assert!(!filter(&[("route", "chat"), ("client", "10.2.0.0/16")])
            .unwrap()
            .matches(&t));
    }

    #[test]
    fn an_ipv4_mapped_client_matches_ipv4_filters() {
        let t = info("chat", "[::ffff:10.1.2.3]:5000", "u", "e");
        assert!(filter(&[("client", "10.1.0.0/16")]).unwrap().matches(&t));
        let v6 = info("chat", "[2001:db8::1]:5000", "u", "e");
        assert!(filter(&[("client", "2001:db8::/32")]).unwrap().matches(&v6));
        assert!(!filter(&[("client", "10.0.0.0/8")]).unwrap().matches(&v6));
    }

    #[test]
    fn bad_values_are_refused_and_other_keys_left_to_the_caller() {
        assert_eq!(
            filter(&[("client", "10.1.2")]),
            Err(FilterError::Client("10.1.2".into()))
        );
        assert_eq!(
            filter(&[("limit", "-1")]),
            Err(FilterError::Limit("-1".into()))
        );
        assert_eq!(filter(&[("route", "")]), Err(FilterError::Empty("route")));
        let mut f = Filter::default();
        assert_eq!(f.set("spread", "10s"), Ok(false));
        assert!(!f.selects());
        f.set("limit", "3").unwrap();
        assert!(!f.selects());
        f.set("route", "chat").unwrap();
        assert!(f.selects());
    }
}
