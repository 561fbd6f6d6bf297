//! The addresses `fetch` refuses unless an allow-list entry names them: one table
//! transcribing the IANA IPv4 and IPv6 Special-Purpose Address Registries (plus
//! multicast, the deprecated IPv6 blocks and unallocated IPv6 space), and a
//! longest-prefix matcher over it.
//!
//! A block in the table is refused whatever its registry row says, with two exceptions
//! that carry an IPv4 address in their last 32 bits (IPv4-mapped `::ffff:0:0/96` and
//! NAT64 `64:ff9b::/96`): those are classified as the IPv4 address they carry. The
//! registry's "Globally Reachable" column decides only which [`Reach`] a row has:
//!
//! - False or N/A: [`Reach::Local`]. N/A marks deprecated or tunnelling blocks (Teredo,
//!   6to4, the old 6to4 relay anycast, ORCHID); a tunnel ends at an IPv4 host this check
//!   cannot see, so those are refused rather than decoded.
//! - True: [`Reach::Special`], refused anyway. These are anycast services (PCP, TURN,
//!   AS112, AMT, DNS-SD SRP), answered by the nearest instance, which may sit in the
//!   operator's own network; and overlay identifiers (ORCHIDv2, drone DETs), which are
//!   not locators. No HTTP API a translation function needs lives at any of them, and
//!   an operator who wants one lists the address, as for any non-public address.
//!
//! Blocks outside the registries: multicast (`224.0.0.0/4`, `ff00::/8`), IPv4-compatible
//! `::/96` and site-local `fec0::/10` (both deprecated, still routed by some stacks), and
//! the IPv6 space outside global unicast `2000::/3`, which IANA has not allocated.
//! Registries as of 2025: <https://www.iana.org/assignments/iana-ipv4-special-registry>,
//! <https://www.iana.org/assignments/iana-ipv6-special-registry>.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

/// What the registry says of a block's reachability, and so what `fetch` does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Not globally reachable (False or N/A), or outside the registry and never a
    /// public destination: refused.
    Local,
    /// Globally reachable per the registry, refused anyway (see the module docs).
    Special,
    /// Carries an IPv4 address in its last 32 bits: classified as that address.
    EmbedsIpv4,
}

use Reach::{EmbedsIpv4, Local, Special};

/// `(block, name, reference, reach)`. The name is what a refusal calls the address;
/// a more specific block wins over the block that contains it.
#[rustfmt::skip] // One row per line, like the registries.
const TABLE: &[(&str, &str, &str, Reach)] = &[
    // IPv4 Special-Purpose Address Registry.
    ("0.0.0.0/8", "\"this network\"", "RFC 791", Local),
    ("0.0.0.0/32", "unspecified", "RFC 1122", Local),
    ("10.0.0.0/8", "private-use", "RFC 1918", Local),
    ("100.64.0.0/10", "shared (carrier-grade NAT)", "RFC 6598", Local),
    ("127.0.0.0/8", "loopback", "RFC 1122", Local),
    // 169.254.169.254 is the cloud metadata service.
    ("169.254.0.0/16", "link-local (cloud metadata)", "RFC 3927", Local),
    ("172.16.0.0/12", "private-use", "RFC 1918", Local),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890", Local),
    ("192.0.0.0/29", "IPv4 service continuity", "RFC 7335", Local),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", Local),
    ("192.0.0.9/32", "PCP anycast", "RFC 7723", Special),
    ("192.0.0.10/32", "TURN anycast", "RFC 8155", Special),
    ("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880", Local),
    ("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880", Local),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737", Local),
    ("192.31.196.0/24", "AS112 DNS anycast", "RFC 7535", Special),
    ("192.52.193.0/24", "AMT relay anycast", "RFC 7450", Special),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)", "RFC 7526", Local),
    ("192.88.99.2/32", "6a44 relay anycast", "RFC 6751", Local),
    ("192.168.0.0/16", "private-use", "RFC 1918", Local),
    ("192.175.48.0/24", "AS112 DNS anycast", "RFC 7534", Special),
    ("198.18.0.0/15", "benchmarking", "RFC 2544", Local),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737", Local),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737", Local),
    ("240.0.0.0/4", "reserved", "RFC 1112", Local),
    ("255.255.255.255/32", "limited broadcast", "RFC 919", Local),
    // IPv4, outside the registry.
    ("224.0.0.0/4", "multicast", "RFC 5771", Local),
    // IPv6 Special-Purpose Address Registry.
    ("::/128", "unspecified", "RFC 4291", Local),
    ("::1/128", "loopback", "RFC 4291", Local),
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", EmbedsIpv4),
    ("64:ff9b::/96", "NAT64", "RFC 6052", EmbedsIpv4),
    ("64:ff9b:1::/48", "local-use NAT64", "RFC 8215", Local),
    ("100::/64", "discard-only", "RFC 6666", Local),
    ("100:0:0:1::/64", "dummy prefix", "RFC 9780", Local),
    ("2001::/23", "IETF protocol assignments", "RFC 2928", Local),
    ("2001::/32", "Teredo", "RFC 4380", Local),
    ("2001:1::1/128", "PCP anycast", "RFC 7723", Special),
    ("2001:1::2/128", "TURN anycast", "RFC 8155", Special),
    ("2001:1::3/128", "DNS-SD SRP anycast", "RFC 9665", Special),
    ("2001:2::/48", "benchmarking", "RFC 5180", Local),
    ("2001:3::/32", "AMT relay anycast", "RFC 7450", Special),
    ("2001:4:112::/48", "AS112 DNS anycast", "RFC 7535", Special),
    ("2001:10::/28", "ORCHID (deprecated)", "RFC 4843", Local),
    ("2001:20::/28", "ORCHIDv2 identifier", "RFC 7343", Special),
    ("2001:30::/28", "drone remote ID tag", "RFC 9374", Special),
    ("2001:db8::/32", "documentation", "RFC 3849", Local),
    ("2002::/16", "6to4", "RFC 3056", Local),
    ("2620:4f:8000::/48", "AS112 DNS anycast", "RFC 7534", Special),
    ("3fff::/20", "documentation", "RFC 9637", Local),
    ("5f00::/16", "SRv6 SID", "RFC 9602", Local),
    // fd00:ec2::254 is the AWS metadata service over IPv6.
    ("fc00::/7", "unique-local (private)", "RFC 4193", Local),
    ("fe80::/10", "link-local", "RFC 4291", Local),
    // IPv6, outside the registry.
    ("::/96", "IPv4-compatible (deprecated)", "RFC 4291", Local),
    ("fec0::/10", "site-local (deprecated)", "RFC 3879", Local),
    ("ff00::/8", "multicast", "RFC 4291", Local),
    ("::/3", "unallocated", "RFC 4291", Local),
    ("4000::/2", "unallocated", "RFC 4291", Local),
    ("8000::/1", "unallocated", "RFC 4291", Local),
];

/// One parsed row of [`TABLE`].
#[derive(Debug)]
struct Block {
    net: IpAddr,
    len: u8,
    name: &'static str,
    reach: Reach,
}

impl Block {
    /// Whether `ip` (of the same family) shares the block's first `len` bits.
    fn contains(&self, ip: IpAddr) -> bool {
        let (net, addr, bits) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (n.to_bits().into(), a.to_bits().into(), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits(), 128),
            _ => return false,
        };
        // Shifting out the host bits leaves the differing prefix bits; a /0 keeps none.
        (net ^ addr)
            .checked_shr(bits - u32::from(self.len))
            .unwrap_or(0)
            == 0
    }
}

/// `"10.0.0.0/8"` as an address and a prefix length, when the length fits the family.
fn parse_cidr(cidr: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

static BLOCKS: LazyLock<Vec<Block>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|&(cidr, name, _reference, reach)| {
            // `table_is_well_formed` parses every row, so this cannot fail at run time.
            let (net, len) = parse_cidr(cidr).expect("TABLE rows are valid CIDR blocks");
            Block {
                net,
                len,
                name,
                reach,
            }
        })
        .collect()
});

/// The most specific block holding `ip`.
fn lookup(ip: IpAddr) -> Option<&'static Block> {
    BLOCKS
        .iter()
        .filter(|b| b.contains(ip))
        .max_by_key(|b| b.len)
}

/// The class of a non-public address (the name of its block), or `None` for a public
/// one. Addresses carrying an IPv4 address (`::ffff:10.0.0.1`, `64:ff9b::a00:1`) are
/// classified as that address.
pub fn non_public_class(ip: IpAddr) -> Option<&'static str> {
    let block = lookup(ip)?;
    match (block.reach, ip) {
        (EmbedsIpv4, IpAddr::V6(v6)) => {
            let [.., a, b, c, d] = v6.octets();
            non_public_class(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        _ => Some(block.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per block: its address at one edge (or, where a more specific block sits
    /// at both edges, next to one) and the address just past that edge. Edges catch a
    /// prefix length that is off by one in either direction.
    #[rustfmt::skip]
    const ROWS: &[(&str, &str, &str)] = &[
        ("0.0.0.0/8", "0.255.255.255", "1.0.0.0"),
        ("0.0.0.0/32", "0.0.0.0", "0.0.0.1"),
        ("10.0.0.0/8", "10.255.255.255", "11.0.0.0"),
        ("100.64.0.0/10", "100.127.255.255", "100.128.0.0"),
        ("127.0.0.0/8", "127.255.255.255", "128.0.0.0"),
        ("169.254.0.0/16", "169.254.255.255", "169.255.0.0"),
        ("172.16.0.0/12", "172.31.255.255", "172.32.0.0"),
        ("192.0.0.0/24", "192.0.0.255", "192.0.1.0"),
        ("192.0.0.0/29", "192.0.0.7", "192.0.0.8"),
        ("192.0.0.8/32", "192.0.0.8", "192.0.0.9"),
        ("192.0.0.9/32", "192.0.0.9", "192.0.0.10"),
        ("192.0.0.10/32", "192.0.0.10", "192.0.0.11"),
        ("192.0.0.170/32", "192.0.0.170", "192.0.0.169"),
        ("192.0.0.171/32", "192.0.0.171", "192.0.0.172"),
        ("192.0.2.0/24", "192.0.2.255", "192.0.3.0"),
        ("192.31.196.0/24", "192.31.196.255", "192.31.197.0"),
        ("192.52.193.0/24", "192.52.193.255", "192.52.194.0"),
        ("192.88.99.0/24", "192.88.99.255", "192.88.100.0"),
        ("192.88.99.2/32", "192.88.99.2", "192.88.99.3"),
        ("192.168.0.0/16", "192.168.255.255", "192.169.0.0"),
        ("192.175.48.0/24", "192.175.48.255", "192.175.49.0"),
        ("198.18.0.0/15", "198.19.255.255", "198.20.0.0"),
        ("198.51.100.0/24", "198.51.100.255", "198.51.101.0"),
        ("203.0.113.0/24", "203.0.113.255", "203.0.114.0"),
        ("240.0.0.0/4", "240.0.0.0", "239.255.255.255"),
        ("255.255.255.255/32", "255.255.255.255", "255.255.255.254"),
        ("224.0.0.0/4", "224.0.0.0", "223.255.255.255"),
        ("::/128", "::", "::1"),
        ("::1/128", "::1", "::2"),
        ("::ffff:0:0/96", "::ffff:ffff:ffff", "::1:0:0:0"),
        ("64:ff9b::/96", "64:ff9b::ffff:ffff", "64:ff9b::1:0:0"),
        ("64:ff9b:1::/48", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"),
        ("100::/64", "100::ffff:ffff:ffff:ffff", "100:0:0:1::"),
        ("100:0:0:1::/64", "100::1:ffff:ffff:ffff:ffff", "100:0:0:2::"),
        ("2001::/23", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"),
        ("2001::/32", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1::"),
        ("2001:1::1/128", "2001:1::1", "2001:1::"),
        ("2001:1::2/128", "2001:1::2", "2001:1::3"),
        ("2001:1::3/128", "2001:1::3", "2001:1::4"),
        ("2001:2::/48", "2001:2:0:ffff:ffff:ffff:ffff:ffff", "2001:2:1::"),
        ("2001:3::/32", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff", "2001:4::"),
        ("2001:4:112::/48", "2001:4:112:ffff:ffff:ffff:ffff:ffff", "2001:4:113::"),
        ("2001:10::/28", "2001:10::", "2001:f:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("2001:20::/28", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", "2001:30::"),
        ("2001:30::/28", "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", "2001:40::"),
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"),
        ("2002::/16", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"),
        ("2620:4f:8000::/48", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"),
        ("3fff::/20", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"),
        ("5f00::/16", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"),
        ("fc00::/7", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"),
        ("fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::"),
        ("::/96", "::ffff:ffff", "::1:0:0"),
        ("fec0::/10", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::"),
        ("ff00::/8", "ff00::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("::/3", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2000::"),
        ("4000::/2", "4000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("8000::/1", "8000::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s} is an address"))
    }

    #[test]
    fn table_is_well_formed() {
        for (i, &(cidr, name, reference, _)) in TABLE.iter().enumerate() {
            let (net, len) = parse_cidr(cidr).unwrap_or_else(|| panic!("{cidr} parses"));
            assert!(BLOCKS[i].contains(net), "{cidr}");
            // No host bits: the written address is the block's first address.
            let (bits, width) = match net {
                IpAddr::V4(v4) => (u128::from(v4.to_bits()), 32),
                IpAddr::V6(v6) => (v6.to_bits(), 128),
            };
            let host_mask = u128::MAX
                .checked_shr(128 - (width - u32::from(len)))
                .unwrap_or(0);
            assert_eq!(bits & host_mask, 0, "{cidr} has host bits set");
            assert!(!name.is_empty() && reference.starts_with("RFC "), "{cidr}");
            assert_eq!(
                TABLE.iter().filter(|r| r.0 == cidr).count(),
                1,
                "{cidr} is listed once"
            );
        }
    }

    /// The block holding `addr`, as `(first address, length)`.
    fn block_of(addr: &str) -> Option<(IpAddr, u8)> {
        lookup(ip(addr)).map(|b| (b.net, b.len))
    }

    #[test]
    fn every_block_holds_its_inside_address_and_not_the_one_past_its_edge() {
        for &(cidr, ..) in TABLE {
            assert_eq!(
                ROWS.iter().filter(|r| r.0 == cidr).count(),
                1,
                "{cidr} has one test row"
            );
        }
        for &(cidr, inside, outside) in ROWS {
            let block = parse_cidr(cidr);
            assert_eq!(block_of(inside), block, "{inside} is in {cidr}");
            assert_ne!(block_of(outside), block, "{outside} is outside {cidr}");
            let found = lookup(ip(inside)).expect("found above");
            if found.reach != EmbedsIpv4 {
                assert_eq!(non_public_class(ip(inside)), Some(found.name), "{inside}");
            }
        }
    }

    #[test]
    fn embedded_ipv4_is_classified_as_that_address() {
        for (addr, class) in [
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private-use")),
            ("::ffff:93.184.216.34", None),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local (cloud metadata)")),
            ("64:ff9b::5db8:d822", None),
        ] {
            assert_eq!(non_public_class(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn the_neighbours_of_blocks_are_public() {
        for addr in [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.3.0",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2000::",
            "2001:200::",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2003::",
            "2606:4700::1111",
            "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
            "2620:4f:8001::",
            "3ffe::1",
            "3fff:1000::",
            "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(non_public_class(ip(addr)), None, "{addr} is public");
        }
    }
}
