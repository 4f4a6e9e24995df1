//! Which addresses a cold run may connect to (API.md §10).
//!
//! Addresses fall in three classes: public ones are always allowed; private ones
//! (loopback, RFC 1918, link-local, CGNAT, unique-local, site-local) only when
//! `allow_private_targets` is set, for test networks; the rest (unspecified,
//! multicast, broadcast, documentation, benchmarking, reserved, tunnels that hide
//! their endpoint) are never connectable. Embedded IPv4 addresses (IPv4-mapped,
//! IPv4-compatible, NAT64 well-known prefix, 6to4) are judged by the IPv4 address
//! they lead to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How an address is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Globally reachable: always allowed.
    Public,
    /// Non-public but a meaningful target on a test network.
    Private,
    /// Never a target.
    Forbidden,
}

/// Whether `ip` may be connected to.
pub fn allows(ip: IpAddr, allow_private_targets: bool) -> bool {
    match classify(ip) {
        AddressClass::Public => true,
        AddressClass::Private => allow_private_targets,
        AddressClass::Forbidden => false,
    }
}

/// Classifies an address.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    const PRIVATE: [([u8; 4], u32); 6] = [
        ([10, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 168, 0, 0], 16),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([100, 64, 0, 0], 10),
    ];
    const FORBIDDEN: [([u8; 4], u32); 10] = [
        ([0, 0, 0, 0], 8),          // "this network", including the unspecified address
        ([192, 0, 0, 0], 24),       // IETF protocol assignments
        ([192, 0, 2, 0], 24),       // TEST-NET-1
        ([198, 51, 100, 0], 24),    // TEST-NET-2
        ([203, 0, 113, 0], 24),     // TEST-NET-3
        ([192, 88, 99, 0], 24),     // deprecated 6to4 relay anycast
        ([198, 18, 0, 0], 15),      // benchmarking
        ([224, 0, 0, 0], 4),        // multicast
        ([240, 0, 0, 0], 4),        // reserved, including the limited broadcast address
        ([255, 255, 255, 255], 32), // broadcast (inside 240/4 too; listed to be explicit)
    ];
    if FORBIDDEN.iter().any(|(net, p)| in_v4(ip, *net, *p)) {
        AddressClass::Forbidden
    } else if PRIVATE.iter().any(|(net, p)| in_v4(ip, *net, *p)) {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip == Ipv6Addr::LOCALHOST {
        return AddressClass::Private;
    }
    if ip.is_unspecified() {
        return AddressClass::Forbidden;
    }
    let bits = u128::from(ip);
    // IPv4-mapped ::ffff:0:0/96 and the deprecated IPv4-compatible ::/96:
    // the packet goes to the embedded IPv4 address.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) || in_v6(ip, [0; 8], 96) {
        return classify_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return classify_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // 6to4 2002::/16 carries the relay's IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    const PRIVATE: [([u16; 8], u32); 3] = [
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),  // unique-local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // deprecated site-local
    ];
    const FORBIDDEN: [([u16; 8], u32); 9] = [
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),            // multicast
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32),      // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),           // documentation (RFC 9637)
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),           // discard-only
        ([0x0064, 0xff9b, 0x0001, 0, 0, 0, 0, 0], 48), // local-use NAT64
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),           // Teredo: hides the real endpoint
        ([0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48),      // benchmarking
        ([0x2001, 0x0010, 0, 0, 0, 0, 0, 0], 28),      // ORCHID
        ([0x2001, 0x0020, 0, 0, 0, 0, 0, 0], 28),      // ORCHIDv2
    ];
    if FORBIDDEN.iter().any(|(net, p)| in_v6(ip, *net, *p)) {
        return AddressClass::Forbidden;
    }
    if PRIVATE.iter().any(|(net, p)| in_v6(ip, *net, *p)) {
        return AddressClass::Private;
    }
    // Only the global unicast range 2000::/3 is routed on the internet today.
    if in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        AddressClass::Public
    } else {
        AddressClass::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, expected: AddressClass) {
        let ip: IpAddr = addr.parse().expect("test address parses");
        assert_eq!(classify(ip), expected, "{addr}");
        assert_eq!(
            allows(ip, false),
            expected == AddressClass::Public,
            "{addr} without private targets"
        );
        assert_eq!(
            allows(ip, true),
            expected != AddressClass::Forbidden,
            "{addr} with private targets"
        );
    }

    #[test]
    fn the_vetting_table() {
        use AddressClass::*;
        let table = [
            // public
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            ("192.0.1.1", Public),
            ("223.255.255.255", Public),
            ("2606:4700::1111", Public),
            ("2a00:1450:4001:80b::200e", Public),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::808:808", Public),
            ("2002:808:808::1", Public),
            // private: allowed only for test networks
            ("127.0.0.1", Private),
            ("127.255.255.254", Private),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("::1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe80::1", Private),
            ("fec0::1", Private),
            ("::ffff:127.0.0.1", Private),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", Private),
            ("64:ff9b::a00:1", Private),
            ("2002:c0a8:101::1", Private),
            ("::127.0.0.1", Private),
            // never
            ("0.0.0.0", Forbidden),
            ("0.1.2.3", Forbidden),
            ("255.255.255.255", Forbidden),
            ("240.0.0.1", Forbidden),
            ("224.0.0.1", Forbidden),
            ("239.255.255.250", Forbidden),
            ("192.0.2.1", Forbidden),
            ("198.51.100.7", Forbidden),
            ("203.0.113.200", Forbidden),
            ("198.18.0.1", Forbidden),
            ("192.0.0.8", Forbidden),
            ("::", Forbidden),
            ("ff02::1", Forbidden),
            ("2001:db8::1", Forbidden),
            ("3fff::1", Forbidden),
            ("100::1", Forbidden),
            ("2001::1", Forbidden),
            ("2001:2::1", Forbidden),
            ("2001:10::1", Forbidden),
            ("64:ff9b:1::1", Forbidden),
            ("::ffff:0.0.0.0", Forbidden),
            ("::ffff:192.0.2.1", Forbidden),
            ("::ffff:224.0.0.1", Forbidden),
            ("::ffff:255.255.255.255", Forbidden),
            ("4000::1", Forbidden),
        ];
        for (addr, expected) in table {
            check(addr, expected);
        }
    }
}
