//! A small network of Linux network namespaces for partition tests (root
//! only): a `hub` namespace with a bridge, and one namespace per member
//! joined to it by a veth pair, each member with its own address in a
//! private /24 that exists only inside these namespaces. Links are cut
//! with blackhole routes inside a member's namespace (one-way or both
//! ways) and healed by deleting them. Everything is removed on drop.

use std::process::Command;

pub struct Network {
    prefix: String,
    /// `10.<subnet>.0.0/24`.
    subnet: u8,
    members: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Network {
    /// Creates the hub and `members` member namespaces, or says why not.
    pub fn create(members: usize) -> Result<Network, String> {
        let id = std::process::id();
        let net = Network {
            prefix: format!("alx{}", id % 100_000),
            subnet: (id % 200) as u8 + 20,
            members,
        };
        net.build()?;
        Ok(net)
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{}/24", self.hub_address()),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..self.members {
            let ns = self.member(i);
            let outside = format!("v{i}");
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // Made inside the hub, its peer born in the member: nothing
            // ever appears in the host's own namespace.
            ip(&[
                "-n", &hub, "link", "add", &outside, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.address(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &hub, "link", "set", &outside, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outside, "up"])?;
        }
        Ok(())
    }

    pub fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    pub fn member(&self, i: usize) -> String {
        format!("{}-m{i}", self.prefix)
    }

    pub fn address(&self, i: usize) -> String {
        format!("10.{}.0.{}", self.subnet, i + 1)
    }

    pub fn hub_address(&self) -> String {
        format!("10.{}.0.254", self.subnet)
    }

    /// Member `i` can no longer send to member `j` (packets are dropped).
    pub fn cut(&self, i: usize, j: usize) -> Result<(), String> {
        ip(&[
            "-n",
            &self.member(i),
            "route",
            "add",
            "blackhole",
            &format!("{}/32", self.address(j)),
        ])
    }

    pub fn uncut(&self, i: usize, j: usize) -> Result<(), String> {
        ip(&[
            "-n",
            &self.member(i),
            "route",
            "del",
            "blackhole",
            &format!("{}/32", self.address(j)),
        ])
    }

    /// Member `i` cut off from every other member both ways (it still
    /// reaches, and is reached from, the hub).
    pub fn isolate(&self, i: usize) -> Result<(), String> {
        for j in (0..self.members).filter(|j| *j != i) {
            self.cut(i, j)?;
            self.cut(j, i)?;
        }
        Ok(())
    }

    pub fn heal(&self, i: usize) {
        for j in (0..self.members).filter(|j| *j != i) {
            let _ = self.uncut(i, j);
            let _ = self.uncut(j, i);
        }
    }

    /// `command` run inside namespace `ns` (`ip netns exec`).
    pub fn command_in(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Moves the calling thread into namespace `ns`: sockets it opens from
    /// now on live there (network namespaces are per thread).
    pub fn enter(&self, ns: &str) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let path = format!("/var/run/netns/{ns}");
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: setns(2) with a namespace file descriptor we own; it only
        // changes the calling thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.members {
            let _ = ip(&["netns", "del", &self.member(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}
