//! The StatefulSet running the brokers, and the pod template that matters most.
//!
//! Pod shape and why:
//! - `podManagementPolicy: Parallel`: brokers do not depend on each other to start (routes
//!   retry until peers resolve), so all ordinals start at once.
//! - Container `nats-mini`: `/nats-mini -c /etc/nats-mini/nats-mini.conf -P
//!   /var/run/nats-mini/nats-mini.pid`. The config is the ConfigMap mounted read-only; the
//!   pid file sits in a small in-memory emptyDir (the root filesystem is read-only).
//! - Environment: `POD_NAME` (the config's `server_name`), `NATS_LOG` (log level), and the
//!   secrets the config references (`NATS_TOKEN`, `NATS_USER_<i>_PASSWORD`) from Secret keys.
//!   Service links are off, so Services named `nats…` cannot inject `NATS_*` variables the
//!   broker would read as options.
//! - Probes on the monitoring port: startup and readiness on `/healthz`, liveness on
//!   `/healthz` too but lenient (90 s of failures) so a busy broker is not killed. The kubelet
//!   stops liveness probing once a pod is being deleted, so lame duck (which fails
//!   `/healthz`) never trips it.
//! - preStop runs `/nats-mini --signal ldm=PIDFILE` (lame duck: stop accepting, then spread
//!   client disconnects over `lameDuckDuration`); terminationGracePeriodSeconds is the
//!   lame-duck duration plus the 10 s grace period plus a 20 s margin, so the kubelet's
//!   SIGKILL never cuts it short.
//! - Security: restricted Pod Security Standard by default (non-root 65532, read-only root
//!   filesystem, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault,
//!   no service account token). The only exception is the opt-in `initContainer` tuning mode.
//! - Tuning: `initContainer` adds one privileged init container from the same image running
//!   `nats-mini tune --somaxconn N [--file-max M]`; `sysctls` puts `net.core.somaxconn` in
//!   the pod's securityContext.sysctls (needs the kubelet's allow-list); `none` does nothing.
//!
//! There is deliberately **no config-hash annotation** on the pod template: the brokers watch
//! their config file and reload it (routes, limits, auth, TLS), so a config change (most
//! often a scale-up, which adds routes) must not roll the StatefulSet. Restarting every
//! broker to add a peer would disconnect every client for nothing.

use super::config::{POD_NAME_ENV, TOKEN_ENV, user_password_env};
use super::services::{CLIENT_PORT_NAME, CLUSTER_PORT_NAME, MONITOR_PORT_NAME};
use super::{
    CONFIG_DIR, CONFIG_FILE, Names, PID_FILE, RUN_DIR, RenderContext, TLS_DIR, common_labels,
    object_meta, selector_labels,
};
use crate::crd::{CLIENT_PORT, LAME_DUCK_GRACE_PERIOD, NatsMini, TuningMode};
use crate::{Error, Result};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, LocalObjectReference,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Sysctl, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The broker binary inside the image.
pub const BINARY: &str = "/nats-mini";
/// Name of the broker container.
pub const CONTAINER_NAME: &str = "nats-mini";
/// Name of the tuning init container.
pub const TUNE_CONTAINER_NAME: &str = "tune";
/// Non-root user and group of the broker (distroless "nonroot").
pub const RUN_AS_USER: i64 = 65532;
/// Seconds added to lame duck + grace for the termination grace period.
pub const TERMINATION_MARGIN_SECS: i64 = 20;

const CONFIG_VOLUME: &str = "config";
const RUN_VOLUME: &str = "run";
const TLS_VOLUME: &str = "tls";

/// The StatefulSet `NAME`.
pub fn stateful_set(nm: &NatsMini, names: &Names, ctx: &RenderContext) -> Result<StatefulSet> {
    Ok(StatefulSet {
        metadata: object_meta(names, &names.base),
        spec: Some(StatefulSetSpec {
            replicas: Some(nm.spec.replicas),
            service_name: Some(names.headless.clone()),
            pod_management_policy: Some("Parallel".to_string()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(names)),
                ..LabelSelector::default()
            },
            template: pod_template(nm, names, ctx)?,
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}

/// Seconds the kubelet waits after preStop starts before it kills the broker.
pub fn termination_grace_period_seconds(nm: &NatsMini) -> Result<i64> {
    let ldm = nm.spec.lame_duck_duration()?;
    // Round a fractional duration up: the margin is there to be a margin.
    let ldm_secs = ldm.as_secs() + u64::from(ldm.subsec_nanos() > 0);
    let total = ldm_secs
        .saturating_add(LAME_DUCK_GRACE_PERIOD.as_secs())
        .saturating_add(TERMINATION_MARGIN_SECS.unsigned_abs());
    i64::try_from(total).map_err(|_| Error::InvalidSpec {
        field: "spec.lameDuckDuration".into(),
        message: "too long".into(),
    })
}

fn pod_template(nm: &NatsMini, names: &Names, ctx: &RenderContext) -> Result<PodTemplateSpec> {
    let spec = &nm.spec;
    let pod = &spec.pod;

    // The user's labels first, so the operator's win on conflict and the selector holds.
    let mut labels = pod.labels.clone();
    labels.extend(common_labels(names));
    // No config hash annotation here, on purpose: see the module docs.
    let annotations = (!pod.annotations.is_empty()).then(|| pod.annotations.clone());

    let image = format!(
        "{}:{}",
        spec.image
            .repository
            .as_deref()
            .unwrap_or(&ctx.image_repository),
        spec.image.tag.as_deref().unwrap_or(&ctx.image_tag)
    );
    let pull_policy = spec.image.pull_policy.as_str().to_string();

    let mut volumes = vec![
        Volume {
            name: CONFIG_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: names.config_map.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: RUN_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("1Mi".into())),
            }),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        VolumeMount {
            name: CONFIG_VOLUME.into(),
            mount_path: CONFIG_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: RUN_VOLUME.into(),
            mount_path: RUN_DIR.into(),
            ..VolumeMount::default()
        },
    ];
    if let Some(tls) = &spec.tls {
        volumes.push(Volume {
            name: TLS_VOLUME.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: TLS_VOLUME.into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }

    let broker = Container {
        name: CONTAINER_NAME.into(),
        image: Some(image.clone()),
        image_pull_policy: Some(pull_policy.clone()),
        command: Some(vec![BINARY.into()]),
        args: Some(vec![
            "-c".into(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
            "-P".into(),
            PID_FILE.into(),
        ]),
        env: Some(env(nm)),
        ports: Some(vec![
            container_port(CLIENT_PORT_NAME, CLIENT_PORT),
            container_port(CLUSTER_PORT_NAME, spec.cluster.port),
            container_port(MONITOR_PORT_NAME, spec.monitoring.port),
        ]),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        startup_probe: Some(healthz_probe(2, 2, 90)),
        readiness_probe: Some(healthz_probe(5, 3, 3)),
        liveness_probe: Some(healthz_probe(30, 5, 3)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        BINARY.into(),
                        "--signal".into(),
                        format!("ldm={PID_FILE}"),
                    ]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(restricted_container_security_context()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };

    let mut init_containers = Vec::new();
    let mut sysctls = Vec::new();
    match spec.tuning.mode {
        TuningMode::InitContainer => {
            let mut command = vec![
                BINARY.to_string(),
                "tune".into(),
                "--somaxconn".into(),
                spec.tuning.somaxconn.to_string(),
            ];
            if let Some(file_max) = spec.tuning.file_max {
                command.push("--file-max".into());
                command.push(file_max.to_string());
            }
            init_containers.push(Container {
                name: TUNE_CONTAINER_NAME.into(),
                image: Some(image),
                image_pull_policy: Some(pull_policy),
                command: Some(command),
                // Writing /proc/sys needs a privileged container, and root: the pod-level
                // runAsNonRoot is overridden for this container only.
                security_context: Some(SecurityContext {
                    privileged: Some(true),
                    run_as_user: Some(0),
                    run_as_group: Some(0),
                    run_as_non_root: Some(false),
                    read_only_root_filesystem: Some(true),
                    ..SecurityContext::default()
                }),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity("10m".into())),
                        ("memory".to_string(), Quantity("16Mi".into())),
                    ])),
                    limits: Some(BTreeMap::from([(
                        "memory".to_string(),
                        Quantity("64Mi".into()),
                    )])),
                    ..ResourceRequirements::default()
                }),
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                ..Container::default()
            });
        }
        TuningMode::Sysctls => sysctls.push(Sysctl {
            name: "net.core.somaxconn".into(),
            value: spec.tuning.somaxconn.to_string(),
        }),
        TuningMode::None => {}
    }

    let selector = selector_labels(names);
    let topology_spread_constraints = (!pod.topology_spread_constraints.is_empty()).then(|| {
        pod.topology_spread_constraints
            .iter()
            .cloned()
            .map(|mut c| {
                if c.label_selector.is_none() {
                    c.label_selector = Some(LabelSelector {
                        match_labels: Some(selector.clone()),
                        ..LabelSelector::default()
                    });
                }
                c
            })
            .collect()
    });

    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations,
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![broker],
            init_containers: (!init_containers.is_empty()).then_some(init_containers),
            volumes: Some(volumes),
            security_context: Some(pod_security_context(nm, sysctls)?),
            termination_grace_period_seconds: Some(termination_grace_period_seconds(nm)?),
            enable_service_links: Some(false),
            automount_service_account_token: Some(false),
            image_pull_secrets: (!spec.image.pull_secrets.is_empty()).then(|| {
                spec.image
                    .pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            node_selector: (!pod.node_selector.is_empty()).then(|| pod.node_selector.clone()),
            tolerations: (!pod.tolerations.is_empty()).then(|| pod.tolerations.clone()),
            affinity: pod.affinity.clone(),
            topology_spread_constraints,
            priority_class_name: pod.priority_class_name.clone(),
            ..PodSpec::default()
        }),
    })
}

fn env(nm: &NatsMini) -> Vec<EnvVar> {
    let mut env = vec![
        EnvVar {
            name: POD_NAME_ENV.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        EnvVar {
            name: "NATS_LOG".into(),
            value: Some(nm.spec.log_level.as_str().into()),
            ..EnvVar::default()
        },
    ];
    let from_secret = |name: String, secret: &str, key: &str| EnvVar {
        name,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_string(),
                key: key.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    if let Some(auth) = &nm.spec.auth {
        if let Some(token) = &auth.token {
            env.push(from_secret(
                TOKEN_ENV.into(),
                &token.secret_name,
                &token.key,
            ));
        }
        if let Some(users) = &auth.users {
            for (i, u) in users.users.iter().enumerate() {
                env.push(from_secret(
                    user_password_env(i),
                    &users.secret_name,
                    u.password_key(),
                ));
            }
        }
    }
    env
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn healthz_probe(period: i32, timeout: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::String(MONITOR_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

/// The operator's restricted defaults, with every field the user set in
/// `spec.pod.securityContext` taking precedence, plus the somaxconn sysctl in `sysctls` mode.
fn pod_security_context(nm: &NatsMini, sysctls: Vec<Sysctl>) -> Result<PodSecurityContext> {
    let defaults = PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    };
    let mut ctx = match &nm.spec.pod.security_context {
        None => defaults,
        Some(user) => {
            // Field-by-field overlay through JSON: k8s-openapi skips unset fields when
            // serializing, so only what the user set replaces a default.
            let to_json = |c: &PodSecurityContext| {
                serde_json::to_value(c).map_err(|source| Error::Serialize {
                    what: "PodSecurityContext".into(),
                    source,
                })
            };
            let mut merged = to_json(&defaults)?;
            if let (Some(base), serde_json::Value::Object(overlay)) =
                (merged.as_object_mut(), to_json(user)?)
            {
                base.extend(overlay);
            }
            serde_json::from_value(merged).map_err(|source| Error::Serialize {
                what: "PodSecurityContext".into(),
                source,
            })?
        }
    };
    if !sysctls.is_empty() {
        let mut all: Vec<Sysctl> = ctx
            .sysctls
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !sysctls.iter().any(|o| o.name == s.name))
            .collect();
        all.extend(sysctls);
        ctx.sysctls = Some(all);
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::render;

    fn natsmini(spec: &str) -> NatsMini {
        serde_yaml::from_str(&format!(
            "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {{name: demo, namespace: prod}}\nspec: {spec}\n"
        ))
        .unwrap()
    }

    fn pod_spec(spec: &str) -> PodSpec {
        let r = render(&natsmini(spec), &RenderContext::default()).unwrap();
        r.stateful_set.spec.unwrap().template.spec.unwrap()
    }

    #[test]
    fn grace_period_covers_lame_duck_grace_and_margin() {
        assert_eq!(
            termination_grace_period_seconds(&natsmini("{}")).unwrap(),
            60
        );
        assert_eq!(
            termination_grace_period_seconds(&natsmini("{lameDuckDuration: 2m}")).unwrap(),
            150
        );
        assert_eq!(
            termination_grace_period_seconds(&natsmini("{lameDuckDuration: 30500ms}")).unwrap(),
            61
        );
    }

    #[test]
    fn init_container_mode_runs_tune_privileged_as_root() {
        let p = pod_spec("{tuning: {mode: initContainer, somaxconn: 4096, fileMax: 2097152}}");
        let init = &p.init_containers.unwrap()[0];
        assert_eq!(
            init.command.as_deref().unwrap(),
            [
                "/nats-mini",
                "tune",
                "--somaxconn",
                "4096",
                "--file-max",
                "2097152"
            ]
        );
        let sc = init.security_context.as_ref().unwrap();
        assert_eq!(sc.privileged, Some(true));
        assert_eq!(sc.run_as_non_root, Some(false));
        assert!(p.security_context.unwrap().sysctls.is_none());
    }

    #[test]
    fn sysctls_mode_sets_somaxconn_in_the_pod_security_context() {
        let p = pod_spec("{tuning: {mode: sysctls, somaxconn: 4096}}");
        assert!(p.init_containers.is_none());
        let sysctls = p.security_context.unwrap().sysctls.unwrap();
        assert_eq!(sysctls.len(), 1);
        assert_eq!(sysctls[0].name, "net.core.somaxconn");
        assert_eq!(sysctls[0].value, "4096");
    }

    #[test]
    fn none_mode_touches_nothing() {
        let p = pod_spec("{}");
        assert!(p.init_containers.is_none());
        assert!(p.security_context.unwrap().sysctls.is_none());
    }

    #[test]
    fn user_security_context_overrides_defaults_field_by_field() {
        let p = pod_spec(
            "{tuning: {mode: sysctls}, pod: {securityContext: {runAsUser: 1000, fsGroup: 2000, sysctls: [{name: net.core.somaxconn, value: '1'}, {name: net.ipv4.ip_local_port_range, value: '1024 65000'}]}}}",
        );
        let sc = p.security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(1000));
        assert_eq!(sc.fs_group, Some(2000));
        assert_eq!(sc.run_as_group, Some(RUN_AS_USER));
        assert_eq!(sc.run_as_non_root, Some(true));
        let sysctls = sc.sysctls.unwrap();
        assert_eq!(sysctls.len(), 2);
        assert_eq!(sysctls[1].name, "net.core.somaxconn");
        assert_eq!(sysctls[1].value, "8192");
    }

    #[test]
    fn secrets_reach_the_container_only_through_secret_key_refs() {
        let p = pod_spec(
            "{auth: {users: {secretName: pw, users: [{username: alice}, {username: bob, passwordKey: b}]}}}",
        );
        let env = p.containers[0].env.clone().unwrap();
        let user1 = env
            .iter()
            .find(|e| e.name == "NATS_USER_1_PASSWORD")
            .unwrap();
        assert!(user1.value.is_none());
        let sel = user1
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!((sel.name.as_str(), sel.key.as_str()), ("pw", "b"));
    }

    #[test]
    fn spread_constraints_get_the_selector_when_they_have_none() {
        let p = pod_spec(
            "{pod: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule}]}}",
        );
        let c = &p.topology_spread_constraints.unwrap()[0];
        assert_eq!(
            c.label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["app.kubernetes.io/instance"],
            "demo"
        );
    }

    #[test]
    fn user_pod_labels_cannot_override_the_selector() {
        let r = render(
            &natsmini("{pod: {labels: {app.kubernetes.io/instance: other, team: a}}}"),
            &RenderContext::default(),
        )
        .unwrap();
        let labels = r
            .stateful_set
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(labels["app.kubernetes.io/instance"], "demo");
        assert_eq!(labels["team"], "a");
    }

    #[test]
    fn image_defaults_come_from_the_context() {
        let ctx = RenderContext {
            image_repository: "registry.example/nm".into(),
            image_tag: "9.9.9".into(),
            ..RenderContext::default()
        };
        let r = render(&natsmini("{}"), &ctx).unwrap();
        let c = &r
            .stateful_set
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/nm:9.9.9"));
        let r = render(&natsmini("{image: {repository: a/b, tag: c}}"), &ctx).unwrap();
        let c = &r
            .stateful_set
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0];
        assert_eq!(c.image.as_deref(), Some("a/b:c"));
    }
}
