//! Pod simulation: the proof that the rendered pod spec really forms a cluster.
//!
//! The rendered StatefulSet's pod template is run the way a kubelet and a container runtime
//! would run it, with the real broker binary and without a cluster:
//!
//! - **Network**: each ordinal gets its own network namespace with an address on a bridge
//!   (see `common/netns.rs`); `/etc/netns/POD/hosts` stands in for both the kubelet-managed
//!   `/etc/hosts` (own FQDN and pod name) and the cluster DNS (every pod's
//!   `NAME-i.NAME-headless.NAMESPACE.svc.cluster.local`, as the headless Service with
//!   `publishNotReadyAddresses` publishes them). The config uses only these FQDNs.
//! - **Filesystem** (faithful, no path rewriting): every container runs in a private mount
//!   and UTS namespace (`unshare --mount --uts` inside `ip netns exec`, host name = pod
//!   name) chrooted into a fresh tmpfs root that holds what the image holds, at the paths
//!   the image has them: the broker binary at the path of the Dockerfile's `ENTRYPOINT`
//!   (a bind mount of the workspace's freshly built `nats-mini`), `/etc/passwd` and
//!   `/etc/nsswitch.conf` as in distroless. The image is static (distroless); the test
//!   build is dynamically linked, so the host's `/usr` (and the `/lib*` links) are
//!   bind-mounted read-only too. Every `volumeMount` is bind-mounted at its `mountPath`
//!   (`readOnly` honoured): the ConfigMap volume is projected like the kubelet's atomic
//!   writer does it (`..data` symlink swapped on update, files linked through it), the
//!   emptyDir is a world-writable directory. With `readOnlyRootFilesystem` the root is
//!   remounted read-only.
//! - **Process**: the container's exact `command` and `args` (with `$(VAR)` expansion),
//!   an environment built as Kubernetes builds it (the image's `ENV`, then the container's
//!   `env` with Secret keys from the fake Secrets below and downward-API fields filled in,
//!   `HOSTNAME`, the `KUBERNETES_SERVICE_*` pair; nothing from the test's environment), as
//!   the user/group of the securityContext (else the image's `USER`) via `setpriv`, with
//!   no-new-privileges and no capabilities when the securityContext asks for them. Init
//!   containers run first, to completion, in the same pod (namespaces and volumes).
//! - **Probes**: the rendered startup, readiness and liveness `httpGet` probes are sent
//!   from the test's namespace to the pod IP, as the kubelet sends them.
//! - **preStop**: the rendered exec command runs inside the container (`nsenter` into its
//!   mount, UTS and network namespaces and its root, as its user, with its environment),
//!   then the test sends SIGTERM, as the kubelet does when the hook returns.
//!
//! Scenario: 3 replicas form a full mesh (every `/routez` names the other two pods, by the
//! server name the config takes from `$POD_NAME`); a message published on pod 0 reaches a
//! subscriber on pod 2; the tuning init container set `net.core.somaxconn` in each pod's
//! namespace; the token from the Secret is enforced. Re-rendered with 5 replicas, the new
//! ConfigMap is projected into the running pods (which reload it by themselves: no restart)
//! before pods 3 and 4 exist, then pods 3 and 4 start and the 5-node mesh forms. Finally
//! pod 4's preStop puts it in lame duck: its client is told (`ldm`), its `/healthz` fails,
//! SIGTERM does not cut the drain short, it exits cleanly within
//! terminationGracePeriodSeconds and the others drop it from `/routez`.
//!
//! Needs root; CI runs as root. Without root the test fails (it never skips).

mod common;

use async_nats::{Client, ConnectOptions, Event};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Probe, SecurityContext};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use nats_mini_e2e::cluster::{next_payload, until_routed};
use nats_mini_e2e::netns::Bridge;
use nats_mini_e2e::process::{PROC_T, Proc, TempDir, binary, http_get, http_json};
use nats_mini_e2e::{T, nats_sync, within};
use nats_mini_operator::NatsMini;
use nats_mini_operator::render::{self, RenderContext, Rendered};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const NAME: &str = "nats";
const NAMESPACE: &str = "messaging";
/// The fake Secret the NatsMini's token refers to.
const TOKEN_SECRET: (&str, &str) = ("nats-token", "token");
const TOKEN: &str = "s3cr3t-pod-simulation-token";
const SOMAXCONN: u32 = 16384;
/// How long a mesh may take to form (route dials back off up to 5 s).
const MESH_T: Duration = Duration::from_secs(20);

/// The NatsMini under test: token auth from a Secret, the tuning init container, and the
/// shortest lame duck the spec (and the broker) allow. With one client to drain, the broker
/// exits about a second after the 10 s grace period, whatever the duration.
fn natsmini(replicas: i32) -> NatsMini {
    let (secret, key) = TOKEN_SECRET;
    serde_yaml::from_str(&format!(
        "apiVersion: nats-mini.io/v1alpha1
kind: NatsMini
metadata: {{name: {NAME}, namespace: {NAMESPACE}}}
spec:
  replicas: {replicas}
  auth:
    token: {{secretName: {secret}, key: {key}}}
  lameDuckDuration: 30s
  tuning: {{mode: initContainer, somaxconn: {SOMAXCONN}}}
"
    ))
    .expect("valid NatsMini")
}

fn render_for(replicas: i32) -> Rendered {
    render::render(&natsmini(replicas), &RenderContext::default()).expect("renders")
}

/// Pod names and DNS names as Kubernetes derives them from the StatefulSet (pod
/// `STS-ORDINAL`, host name = pod name, subdomain = `serviceName`), not from the operator's
/// own helpers: the config's route URLs must match what the cluster really publishes.
struct Dns {
    stateful_set: String,
    service: String,
}

impl Dns {
    fn of(r: &Rendered) -> Dns {
        let sts = &r.stateful_set;
        let service = sts
            .spec
            .as_ref()
            .map(|s| s.service_name.clone().expect("serviceName"))
            .expect("spec");
        let headless = r.headless_service.spec.as_ref().expect("headless spec");
        assert_eq!(
            r.headless_service.metadata.name.as_ref(),
            Some(&service),
            "serviceName must name the headless Service (pods get no DNS records otherwise)"
        );
        assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
        assert_eq!(headless.publish_not_ready_addresses, Some(true));
        Dns {
            stateful_set: sts.metadata.name.clone().expect("name"),
            service,
        }
    }

    fn pod(&self, ordinal: usize) -> String {
        format!("{}-{ordinal}", self.stateful_set)
    }

    fn fqdn(&self, ordinal: usize) -> String {
        format!(
            "{}.{}.{NAMESPACE}.svc.cluster.local",
            self.pod(ordinal),
            self.service
        )
    }
}

fn pod_spec(r: &Rendered) -> &PodSpec {
    r.stateful_set
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("StatefulSet with a pod template")
}

/// A Secret key, as the API server would hand it to the kubelet.
fn secret_value(name: &str, key: &str) -> Option<String> {
    (name, key).eq(&TOKEN_SECRET).then(|| TOKEN.to_string())
}

// ---- the image ----------------------------------------------------------------------------

/// What the broker image contributes: its `ENV`, `USER` and where its binary is.
struct Image {
    env: Vec<(String, String)>,
    user: (u32, u32),
    binary_path: String,
}

/// Reads the broker stage of the repository's Dockerfile (the last stage) on top of its
/// base, distroless static `nonroot`, whose environment is fixed here.
fn image() -> Image {
    let text = std::fs::read_to_string(common::repo_root().join("Dockerfile")).expect("Dockerfile");
    let stage = text.rsplit("\nFROM ").next().expect("a FROM line");
    let mut img = Image {
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            (
                "SSL_CERT_FILE".into(),
                "/etc/ssl/certs/ca-certificates.crt".into(),
            ),
        ],
        user: (65532, 65532),
        binary_path: String::new(),
    };
    for line in stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("ENV K=V");
                set_env(&mut img.env, k, v.trim_matches('"'));
            }
        } else if let Some(rest) = line.strip_prefix("USER ") {
            let (u, g) = rest.split_once(':').unwrap_or((rest, rest));
            img.user = (u.parse().expect("numeric USER"), g.parse().expect("gid"));
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            let argv: Vec<String> = serde_json::from_str(rest).expect("ENTRYPOINT [..]");
            img.binary_path = argv[0].clone();
        }
    }
    assert!(
        img.binary_path.starts_with('/'),
        "no ENTRYPOINT in the Dockerfile's last stage"
    );
    img
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(name, _)| name != k);
    env.push((k.to_string(), v.to_string()));
}

// ---- what the kubelet does ----------------------------------------------------------------

/// Kubernetes' `$(VAR)` expansion in env values, command and args: a defined variable is
/// replaced, an undefined reference stays as written, `$$` is a literal `$`.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')'))
            && let Some((_, v)) = env.iter().rev().find(|(k, _)| k == name)
        {
            out.push_str(v);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The identity the downward API exposes.
struct PodIdentity<'a> {
    name: &'a str,
    ip: IpAddr,
    host_ip: IpAddr,
}

/// The container's environment: image `ENV`, then `env` in order (later entries may refer
/// to earlier ones), then what the kubelet adds.
fn container_env(img: &Image, c: &Container, pod: &PodIdentity) -> Vec<(String, String)> {
    assert!(c.env_from.is_none(), "envFrom is not simulated");
    let mut env = img.env.clone();
    let mut declared: Vec<(String, String)> = Vec::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), None) => expand(v, &declared),
            (None, None) => String::new(),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    match f.field_path.as_str() {
                        "metadata.name" | "spec.hostname" => pod.name.to_string(),
                        "metadata.namespace" => NAMESPACE.to_string(),
                        "status.podIP" => pod.ip.to_string(),
                        "status.hostIP" => pod.host_ip.to_string(),
                        other => panic!("fieldRef {other} is not simulated"),
                    }
                } else if let Some(s) = &from.secret_key_ref {
                    match secret_value(&s.name, &s.key) {
                        Some(v) => v,
                        // The kubelet would not start the container (CreateContainerConfigError).
                        None if s.optional != Some(true) => {
                            panic!(
                                "env {} refers to a missing Secret key {}/{}",
                                e.name, s.name, s.key
                            )
                        }
                        None => continue,
                    }
                } else {
                    panic!("env {}: valueFrom {from:?} is not simulated", e.name)
                }
            }
            (Some(_), Some(_)) => panic!("env {} has both value and valueFrom", e.name),
        };
        set_env(&mut declared, &e.name, &value);
    }
    for (k, v) in declared {
        set_env(&mut env, &k, &v);
    }
    set_env(&mut env, "HOSTNAME", pod.name);
    // Injected even with enableServiceLinks: false.
    set_env(&mut env, "KUBERNETES_SERVICE_HOST", "10.96.0.1");
    set_env(&mut env, "KUBERNETES_SERVICE_PORT", "443");
    env
}

/// Projects a ConfigMap into `dir` as the kubelet's atomic writer does
/// ([`common::project_volume`]).
fn project_config_map(dir: &Path, cm: &ConfigMap, version: usize) {
    let data = cm.data.as_ref().expect("ConfigMap data");
    let files: Vec<(&str, &[u8])> = data
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    common::project_volume(dir, &files, version);
}

/// Single-quotes `s` for sh.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A host tool by absolute path (the containers' environment has no host `PATH`).
fn host_tool(name: &str) -> String {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("{name} not found (util-linux/coreutils)"))
}

/// A simulated pod: its volumes on the host and the running broker container.
struct Pod {
    ordinal: usize,
    name: String,
    ip: IpAddr,
    /// Host directories of the pod's volumes, by volume name.
    volumes: Vec<(String, PathBuf)>,
    container: Container,
    env: Vec<(String, String)>,
    user: (u32, u32),
    proc: Proc,
}

impl Pod {
    fn volume(&self, name: &str) -> &Path {
        &self
            .volumes
            .iter()
            .find(|(n, _)| n == name)
            .expect("volume")
            .1
    }

    fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, port)
    }

    /// A container port by name (probes and Services refer to ports by name).
    fn port(&self, port: &IntOrString) -> u16 {
        match port {
            IntOrString::Int(p) => *p as u16,
            IntOrString::String(name) => {
                self.container
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(name))
                    .unwrap_or_else(|| panic!("no container port named {name}"))
                    .container_port as u16
            }
        }
    }

    fn monitor(&self) -> SocketAddr {
        self.addr(self.port(&IntOrString::String("monitor".into())))
    }

    fn client_url(&self) -> String {
        format!(
            "nats://{}",
            self.addr(self.port(&IntOrString::String("client".into())))
        )
    }
}

/// The test's cluster: the bridge, the fake node's directories, the pods and their logs.
struct Sim {
    // Field order is drop order: pods (their brokers killed) before the network.
    pods: Vec<Pod>,
    img: Image,
    dir: TempDir,
    net: Bridge,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            net: Bridge::create("pm"),
            img: image(),
            dir: TempDir::new("pod-sim"),
            pods: Vec::new(),
        }
    }

    fn logs(&self) -> String {
        self.pods
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.proc.stderr_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every pod's hosts file: localhost, its own FQDN and name (the kubelet's part), and
    /// every existing pod's FQDN (the cluster DNS's part).
    fn hosts_file(&self, dns: &Dns, me: usize, ordinals: &[usize]) -> String {
        let mut s = String::from(
            "# Kubernetes-managed hosts file (simulated), plus the cluster DNS records.\n\
             127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        s.push_str(&format!(
            "{}\t{}\t{}\n",
            self.net.addr(me),
            dns.fqdn(me),
            dns.pod(me)
        ));
        for &i in ordinals.iter().filter(|&&i| i != me) {
            s.push_str(&format!("{}\t{}\n", self.net.addr(i), dns.fqdn(i)));
        }
        s
    }

    /// Gives pods `ordinals` (which must include every pod created so far) their hosts
    /// files, creating the namespaces of new ones: DNS records appear as pods get IPs.
    fn publish_dns(&mut self, dns: &Dns, ordinals: &[usize]) {
        for &i in ordinals {
            let text = self.hosts_file(dns, i, ordinals);
            if self.net.has_host(i) {
                self.net.write_hosts(i, &text);
            } else {
                self.net.add_host(i, &text);
            }
        }
    }

    /// The argv that runs container `c` of pod `ordinal` in the pod's namespaces and its own
    /// root filesystem (see the module docs), as `user`.
    fn container_argv(
        &self,
        ordinal: usize,
        pod_name: &str,
        c: &Container,
        volumes: &[(String, PathBuf)],
        env: &[(String, String)],
        user: (u32, u32),
    ) -> Vec<String> {
        let root = self.dir.join(&format!("{pod_name}-{}-rootfs", c.name));
        std::fs::create_dir_all(&root).unwrap();
        let r = sh(path_str(&root));
        let mut script = vec![
            "set -eu".to_string(),
            format!("hostname {}", sh(pod_name)),
            format!("mount -t tmpfs -o mode=0755 rootfs {r}"),
            // The image's files (distroless nonroot), then the host's /usr for the libraries.
            format!("mkdir -p {r}/usr {r}/etc {r}/dev {r}/proc {r}/tmp"),
            format!(
                "printf 'root:x:0:0:root:/root:/sbin/nologin\\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\\n' > {r}/etc/passwd"
            ),
            format!("printf 'hosts: files dns\\n' > {r}/etc/nsswitch.conf"),
            format!(
                "for d in bin sbin lib lib32 lib64 libx32; do \
                 if [ -L /$d ]; then ln -s \"$(readlink /$d)\" {r}/$d; \
                 elif [ -d /$d ]; then mkdir {r}/$d; mount --rbind /$d {r}/$d; mount -o remount,bind,ro {r}/$d; fi; done"
            ),
            format!("mount --rbind /usr {r}/usr"),
            format!("mount -o remount,bind,ro {r}/usr"),
            format!("mount --rbind /dev {r}/dev"),
            format!("mount --rbind /proc {r}/proc"),
            // The kubelet's /etc/hosts: here the namespace's, which `ip netns exec` mounted.
            format!("touch {r}/etc/hosts"),
            format!("mount --bind /etc/hosts {r}/etc/hosts"),
        ];
        let bin_in_image = format!("{}{}", path_str(&root), self.img.binary_path);
        let parent = Path::new(&bin_in_image).parent().unwrap();
        script.push(format!("mkdir -p {}", sh(path_str(parent))));
        script.push(format!("touch {}", sh(&bin_in_image)));
        script.push(format!(
            "mount --bind {} {}",
            sh(path_str(binary())),
            sh(&bin_in_image)
        ));
        for m in c.volume_mounts.iter().flatten() {
            let src = &volumes
                .iter()
                .find(|(n, _)| *n == m.name)
                .unwrap_or_else(|| panic!("mount of unknown volume {}", m.name))
                .1;
            assert!(m.sub_path.is_none(), "subPath is not simulated");
            let dst = sh(&format!("{}{}", path_str(&root), m.mount_path));
            script.push(format!("mkdir -p {dst}"));
            script.push(format!("mount --bind {} {dst}", sh(path_str(src))));
            if m.read_only == Some(true) {
                script.push(format!("mount -o remount,bind,ro {dst}"));
            }
        }
        let sc = c.security_context.clone().unwrap_or_default();
        if sc.read_only_root_filesystem == Some(true) {
            script.push(format!("mount -o remount,ro {r}"));
        }
        script.push("exec \"$@\"".into());

        let mut argv: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.net.ns(ordinal),
            host_tool("unshare"),
            "--mount".into(),
            "--uts".into(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            script.join("\n"),
            "sh".into(),
            host_tool("env"),
            "-i".into(),
        ];
        argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.push(host_tool("chroot"));
        argv.push(path_str(&root).into());
        argv.extend(drop_privileges(&sc, user));
        argv.extend(command_line(c, env));
        argv
    }

    /// Starts pod `ordinal` of the rendered StatefulSet: volumes, init containers (to
    /// completion), then the broker container.
    async fn start_pod(&mut self, r: &Rendered, ordinal: usize) {
        let spec = pod_spec(r).clone();
        let name = Dns::of(r).pod(ordinal);
        let ip = IpAddr::V4(self.net.addr(ordinal));
        let identity = PodIdentity {
            name: &name,
            ip,
            host_ip: IpAddr::V4(self.net.gateway()),
        };
        let mut volumes = Vec::new();
        for v in spec.volumes.iter().flatten() {
            let dir = self.dir.join(&format!("{name}-volume-{}", v.name));
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(cm) = &v.config_map {
                assert_eq!(
                    Some(&cm.name),
                    r.config_map.metadata.name.as_ref(),
                    "the pod mounts a ConfigMap that is not the rendered one"
                );
                project_config_map(&dir, &r.config_map, 0);
            } else if v.empty_dir.is_some() {
                // The kubelet creates emptyDirs world-writable (medium Memory: a tmpfs
                // there; a plain directory here).
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            } else {
                panic!("volume {} has no simulated source", v.name);
            }
            volumes.push((v.name.clone(), dir));
        }
        for init in spec.init_containers.iter().flatten() {
            let env = container_env(&self.img, init, &identity);
            let user = run_as(&self.img, init, &spec);
            let argv = self.container_argv(ordinal, &name, init, &volumes, &env, user);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let mut p = Proc::spawn_program(Path::new(&host_tool("ip")), &argv, &[]);
            let status = p.wait_exit_within(PROC_T).await;
            assert!(
                status.success(),
                "init container {} of {name}: {status}\n{}",
                init.name,
                p.output_text()
            );
        }
        assert_eq!(
            spec.containers.len(),
            1,
            "one container (the broker) per pod"
        );
        let c = spec.containers[0].clone();
        let env = container_env(&self.img, &c, &identity);
        let user = run_as(&self.img, &c, &spec);
        let argv = self.container_argv(ordinal, &name, &c, &volumes, &env, user);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let proc = Proc::spawn_program(Path::new(&host_tool("ip")), &argv, &[]);
        self.pods.push(Pod {
            ordinal,
            name,
            ip,
            volumes,
            container: c,
            env,
            user,
            proc,
        });
    }

    fn pod(&self, ordinal: usize) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.ordinal == ordinal)
            .expect("pod exists")
    }

    fn pod_mut(&mut self, ordinal: usize) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| p.ordinal == ordinal)
            .expect("pod exists")
    }

    /// Sends one rendered probe; true when the kubelet would count it a success.
    async fn probe_ok(&self, pod: &Pod, probe: &Probe) -> bool {
        let get = probe.http_get.as_ref().expect("httpGet probe");
        assert!(
            get.scheme.as_deref().unwrap_or("HTTP") == "HTTP",
            "only HTTP probes are simulated"
        );
        assert!(get.host.is_none(), "probes go to the pod IP");
        let addr = pod.addr(pod.port(&get.port));
        let path = get.path.as_deref().unwrap_or("/");
        matches!(http_get(addr, path).await, Ok((code, _)) if (200..400).contains(&code))
    }

    /// Waits until the startup probe passes (within its failureThreshold × periodSeconds,
    /// capped at [`MESH_T`]), then requires readiness and liveness to pass.
    async fn wait_ready(&self, ordinal: usize) {
        let pod = self.pod(ordinal);
        let c = &pod.container;
        let startup = c.startup_probe.as_ref().expect("startup probe");
        let budget = Duration::from_secs(
            (startup.failure_threshold.unwrap_or(3) * startup.period_seconds.unwrap_or(10)) as u64,
        )
        .min(MESH_T);
        let deadline = tokio::time::Instant::now() + budget;
        while !self.probe_ok(pod, startup).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "startup probe of {} never passed; logs:\n{}",
                pod.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (what, p) in [
            ("readiness", &c.readiness_probe),
            ("liveness", &c.liveness_probe),
        ] {
            let p = p.as_ref().unwrap_or_else(|| panic!("{what} probe"));
            assert!(
                self.probe_ok(pod, p).await,
                "{what} probe of {} failed",
                pod.name
            );
        }
    }

    /// The server names pod `ordinal` has routes to, from its `/routez`.
    async fn routed_names(&self, ordinal: usize) -> Vec<String> {
        let routez = http_json(self.pod(ordinal).monitor(), "/routez").await;
        let mut names: Vec<String> = routez["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["remote_name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Waits until every pod in `ordinals` routes to exactly the others, named by their pod
    /// names (the config's `server_name: $POD_NAME`).
    async fn wait_mesh(&self, ordinals: &[usize]) {
        let deadline = tokio::time::Instant::now() + MESH_T;
        for &i in ordinals {
            let mut want: Vec<String> = ordinals
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| self.pod(j).name.clone())
                .collect();
            want.sort();
            loop {
                let got = self.routed_names(i).await;
                if got == want {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} routes to {got:?}, want {want:?}; logs:\n{}",
                    self.pod(i).name,
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Projects a new ConfigMap into every running pod's config volume.
    fn update_config_map(&self, r: &Rendered, version: usize) {
        let spec = pod_spec(r);
        for v in spec
            .volumes
            .iter()
            .flatten()
            .filter(|v| v.config_map.is_some())
        {
            for p in &self.pods {
                project_config_map(p.volume(&v.name), &r.config_map, version);
            }
        }
    }
}

/// The container's user: securityContext (container, then pod), else the image's `USER`.
fn run_as(img: &Image, c: &Container, spec: &PodSpec) -> (u32, u32) {
    let csc = c.security_context.clone().unwrap_or_default();
    let psc = spec.security_context.clone().unwrap_or_default();
    let uid = csc
        .run_as_user
        .or(psc.run_as_user)
        .map(|u| u as u32)
        .unwrap_or(img.user.0);
    let gid = csc
        .run_as_group
        .or(psc.run_as_group)
        .map(|g| g as u32)
        .unwrap_or(img.user.1);
    let non_root = csc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false);
    // The kubelet refuses to start such a container (CreateContainerConfigError).
    assert!(
        !(non_root && uid == 0),
        "{}: runAsNonRoot with uid 0",
        c.name
    );
    (uid, gid)
}

/// What the runtime does before exec for an unprivileged container: switch user, drop
/// supplementary groups, and as asked, set no-new-privileges and drop every capability.
fn drop_privileges(sc: &SecurityContext, (uid, gid): (u32, u32)) -> Vec<String> {
    if sc.privileged == Some(true) {
        assert_eq!(uid, 0, "a privileged container here runs as root");
        return Vec::new();
    }
    let mut argv = vec![
        "/usr/bin/setpriv".to_string(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
    ];
    if sc.allow_privilege_escalation == Some(false) {
        argv.push("--no-new-privs".into());
    }
    let drop_all = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    if drop_all {
        argv.extend(["--inh-caps=-all".into(), "--bounding-set=-all".into()]);
    }
    argv.push("--".into());
    argv
}

/// `command` + `args` with `$(VAR)` expanded (the image's ENTRYPOINT/CMD are not used: the
/// rendered container sets a command).
fn command_line(c: &Container, env: &[(String, String)]) -> Vec<String> {
    let command = c
        .command
        .as_ref()
        .expect("the rendered container sets its command");
    command
        .iter()
        .chain(c.args.iter().flatten())
        .map(|a| expand(a, env))
        .collect()
}

/// Runs pod `ordinal`'s preStop exec hook inside its container, as the kubelet does (CRI
/// exec: the container's namespaces, root, user and environment), to completion.
async fn run_pre_stop(sim: &Sim, ordinal: usize) {
    let pod = sim.pod(ordinal);
    let hook = pod
        .container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("an exec preStop hook");
    let pid = pod.proc.pid().to_string();
    let (uid, gid) = pod.user;
    let out = within(
        T,
        "the preStop hook",
        tokio::process::Command::new(host_tool("nsenter"))
            .args([
                "--target", &pid, "--mount", "--uts", "--net", "--root", "--wd",
            ])
            .arg(format!("--setuid={uid}"))
            .arg(format!("--setgid={gid}"))
            .arg("--")
            .args(&hook)
            .env_clear()
            .envs(pod.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("running nsenter");
    assert!(
        out.status.success(),
        "preStop {hook:?} of {}: {}\n{}{}",
        pod.name,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client of pod `ordinal` with the token, its events forwarded to the returned channel.
async fn client(sim: &Sim, ordinal: usize) -> (Client, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let c = within(
        T,
        "connecting",
        ConnectOptions::with_token(TOKEN.into())
            .ignore_discovered_servers()
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            })
            .connect(sim.pod(ordinal).client_url()),
    )
    .await
    .expect("connect with the Secret's token");
    (c, rx)
}

/// Waits for an event matching `want` (others are skipped).
async fn wait_event(rx: &mut mpsc::UnboundedReceiver<Event>, what: &str, want: fn(&Event) -> bool) {
    within(Duration::from_secs(15), what, async {
        loop {
            let e = rx.recv().await.expect("event channel open");
            if want(&e) {
                return;
            }
        }
    })
    .await
}

/// Publishes on `from` until a subscriber on `to` gets it, then one real message.
async fn crosses(sim: &Sim, from: usize, to: usize) {
    let (pubc, _) = client(sim, from).await;
    let (subc, _) = client(sim, to).await;
    let subject = format!("sim.{from}.to.{to}");
    let mut sub = subc.subscribe(subject.clone()).await.unwrap();
    nats_sync(&subc).await;
    until_routed(&pubc, &mut sub, &subject).await;
    pubc.publish(subject, "hello across pods".into())
        .await
        .unwrap();
    pubc.flush().await.unwrap();
    assert_eq!(next_payload(&mut sub).await, "hello across pods");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_pods_form_a_cluster_scale_to_five_and_drain() {
    let mut sim = Sim::new();

    // ---- 3 replicas ----
    let r3 = render_for(3);
    let three = [0, 1, 2];
    sim.publish_dns(&Dns::of(&r3), &three);
    for i in three {
        sim.start_pod(&r3, i).await;
    }
    for i in three {
        sim.wait_ready(i).await;
        // The tuning init container ran in the pod's network namespace.
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &sim.net.ns(i),
                "cat",
                "/proc/sys/net/core/somaxconn",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            SOMAXCONN.to_string()
        );
    }
    sim.wait_mesh(&three).await;
    crosses(&sim, 0, 2).await;
    // The token reached the broker from the Secret: a client without it is refused.
    let anonymous = within(
        T,
        "an anonymous connect",
        ConnectOptions::new()
            .ignore_discovered_servers()
            .connect(sim.pod(1).client_url()),
    )
    .await;
    assert!(anonymous.is_err(), "a client without the token got in");

    // ---- scale to 5: the new ConfigMap first (old pods reload it, no restart) ----
    let r5 = render_for(5);
    assert_eq!(
        pod_spec(&r3),
        pod_spec(&r5),
        "a scale-up must not change the pod template"
    );
    let marks: Vec<usize> = sim.pods.iter().map(|p| p.proc.mark()).collect();
    sim.update_config_map(&r5, 1);
    for (i, mark) in three.iter().zip(marks) {
        let pod = &mut sim.pods[*i];
        pod.proc
            .wait_for_line_since(mark, "Configuration file changed", Duration::from_secs(10))
            .await;
    }
    let five = [0, 1, 2, 3, 4];
    sim.publish_dns(&Dns::of(&r5), &five);
    for i in [3, 4] {
        sim.start_pod(&r5, i).await;
    }
    for i in [3, 4] {
        sim.wait_ready(i).await;
    }
    sim.wait_mesh(&five).await;
    for p in &sim.pods {
        assert!(
            !p.proc.stderr_text().contains("Failed to reload"),
            "{} failed a reload:\n{}",
            p.name,
            p.proc.stderr_text()
        );
    }
    crosses(&sim, 0, 4).await;
    crosses(&sim, 3, 1).await;

    // ---- pod 4 terminates: preStop (lame duck), then SIGTERM, as the kubelet does ----
    let (drained, mut events) = client(&sim, 4).await;
    let _sub = drained.subscribe("sim.drained").await.unwrap();
    nats_sync(&drained).await;
    let mark = sim.pod(4).proc.mark();
    run_pre_stop(&sim, 4).await;
    // The kubelet sends SIGTERM as soon as the hook returns. The test first waits for the
    // broker to act on the hook's SIGUSR2: when both signals are pending at once the broker
    // may take SIGTERM first and exit without draining (a broker race, seen in about a
    // third of back-to-back `kill -USR2; kill -TERM` runs), which would make this flaky.
    sim.pod_mut(4)
        .proc
        .wait_for_line_since(mark, "Entering lame duck mode", T)
        .await;
    sim.pod(4).proc.signal("TERM");
    wait_event(&mut events, "the lame-duck INFO", |e| {
        matches!(e, Event::LameDuckMode)
    })
    .await;
    // The kubelet takes the pod out of the Services' endpoints.
    let readiness = sim
        .pod(4)
        .container
        .readiness_probe
        .clone()
        .expect("readiness probe");
    assert!(
        !sim.probe_ok(sim.pod(4), &readiness).await,
        "the readiness probe still passes during lame duck"
    );
    assert!(
        sim.pod_mut(4).proc.try_exit().await.is_none(),
        "SIGTERM cut the drain short"
    );
    wait_event(&mut events, "the drain's disconnect", |e| {
        matches!(e, Event::Disconnected)
    })
    .await;
    let grace = pod_spec(&r5)
        .termination_grace_period_seconds
        .expect("grace period");
    let pod4 = sim.pod_mut(4);
    let status = pod4
        .proc
        .wait_exit_within(Duration::from_secs(grace as u64))
        .await;
    assert!(
        status.success(),
        "pod 4 exited with {status}:\n{}",
        pod4.proc.stderr_text()
    );
    let log = pod4.proc.stderr_text();
    assert!(log.contains("ignored during lame duck mode"), "{log}");
    sim.wait_mesh(&[0, 1, 2, 3]).await;
    crosses(&sim, 3, 0).await;
}
