//! Simulated hosts on one L2 segment, for tests that run real processes against each other:
//! one network namespace per host, a veth pair from it to a bridge in the test's own
//! namespace (the bridge has the `.1` address, so the test reaches every host directly, as
//! a kubelet reaches its pods' IPs), and `/etc/netns/NS/hosts`, which `ip netns exec`
//! bind-mounts over `/etc/hosts`: name resolution without a DNS server.
//!
//! Hosts are added one at a time (a StatefulSet scaling up). Everything (namespaces, veths,
//! the bridge, the `/etc/netns` directories) is removed on drop, on panic too, and up front
//! in case a killed earlier run with the same tag left it behind.
//!
//! Needs root; [`Bridge::create`] fails loudly without it (tests must not skip silently).

use std::net::Ipv4Addr;
use std::process::Command;

/// Runs `ip ARGS` and panics with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (iproute2 is installed by scripts/test-deps.sh)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics unless the test runs as root.
pub fn require_root(what: &str) {
    let uid = Command::new("id").arg("-u").output().expect("running id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "{what} needs root (network and mount namespaces); CI runs as root"
    );
}

/// The bridge and the hosts attached to it so far (by index).
pub struct Bridge {
    /// Prefix of every interface and namespace name (≤ 6 characters, so names fit in 15).
    tag: String,
    /// Third octet of the `10.214.X.0/24` subnet.
    subnet: u8,
    name: String,
    hosts: Vec<usize>,
}

impl Bridge {
    /// Creates the bridge. `prefix` (two letters) keeps tests that run at once apart; the
    /// process id keeps runs apart.
    pub fn create(prefix: &str) -> Bridge {
        require_root("a network-namespace test");
        let id = std::process::id() % 10_000;
        let mut b = Bridge {
            tag: format!("{prefix}{id}"),
            // Runs with different prefixes or processes get different subnets (two bridges
            // with one subnet at once would steal each other's routes).
            subnet: ((id + prefix.bytes().map(u32::from).sum::<u32>() * 7) % 200) as u8 + 20,
            name: format!("{prefix}br{id}"),
            // Whatever a killed run with this tag may have left.
            hosts: (0..16).collect(),
        };
        b.destroy();
        b.hosts.clear();
        ip(&["link", "add", &b.name, "type", "bridge"]);
        let gw = format!("10.214.{}.1/24", b.subnet);
        ip(&["addr", "add", &gw, "dev", &b.name]);
        ip(&["link", "set", &b.name, "up"]);
        b
    }

    /// Namespace of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}-h{i}", self.tag)
    }

    /// Address of host `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet, 10 + i as u8)
    }

    /// The bridge's own address (the test's side).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet, 1)
    }

    /// Whether host `i` was added.
    pub fn has_host(&self, i: usize) -> bool {
        self.hosts.contains(&i)
    }

    /// Adds host `i`: its namespace (loopback up), a veth with [`Bridge::addr`], and its
    /// hosts file.
    pub fn add_host(&mut self, i: usize, hosts_file: &str) {
        assert!(i < 16 && !self.hosts.contains(&i), "host {i} added twice");
        self.hosts.push(i);
        let ns = self.ns(i);
        let (outer, inner) = (format!("{}v{i}", self.tag), format!("{}p{i}", self.tag));
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &outer, "master", &self.name]);
        ip(&["link", "set", &outer, "up"]);
        ip(&["link", "set", &inner, "netns", &ns]);
        let a = format!("{}/24", self.addr(i));
        ip(&["-n", &ns, "addr", "add", &a, "dev", &inner]);
        ip(&["-n", &ns, "link", "set", &inner, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        std::fs::create_dir_all(format!("/etc/netns/{ns}")).expect("creating /etc/netns/NS");
        self.write_hosts(i, hosts_file);
    }

    /// Replaces host `i`'s hosts file in place (same inode), so processes already running
    /// in the namespace, whose `/etc/hosts` is a bind mount of it, see the new content.
    pub fn write_hosts(&self, i: usize, hosts_file: &str) {
        std::fs::write(format!("/etc/netns/{}/hosts", self.ns(i)), hosts_file)
            .expect("writing /etc/netns/NS/hosts");
    }

    /// Takes host `i`'s link down (`up` false: a network partition) or back up.
    pub fn link(&self, i: usize, up: bool) {
        let inner = format!("{}p{i}", self.tag);
        ip(&[
            "-n",
            &self.ns(i),
            "link",
            "set",
            &inner,
            if up { "up" } else { "down" },
        ]);
    }

    fn destroy(&self) {
        for &i in &self.hosts {
            let ns = self.ns(i);
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{}v{i}", self.tag)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.destroy();
    }
}
