//! The broker's config file (`nats-mini.conf`, nats-server syntax) and the ConfigMap that
//! holds it.
//!
//! The text is built line by line rather than through a serializer so it reads like a config
//! a person would write, with a header saying where it comes from. Every value is either a
//! number, a double-quoted string made only of characters the spec's validation allows (so no
//! escaping is ever needed), or a bare `$VARIABLE` reference. Secrets (the token, user
//! passwords) appear only as such references; the pod's environment fills them from Secret
//! keys (see [`super::statefulset`]).
//!
//! Sizes are written as byte counts and durations as the user's validated Go duration text,
//! so the file means the same to nats-mini and nats-server. The one exception is `busy_poll`,
//! nats-mini's own key (nats-server refuses it as unknown), written only when the spec sets
//! `limits.busyPoll`.
//!
//! The cluster block is always present, even for one replica: nats-server cannot add a route
//! listener on reload, so a NatsMini scaled from 1 to 3 must already be listening for routes.

use super::{CONFIG_FILE, Names, TLS_DIR, object_meta};
use crate::crd::{CLIENT_PORT, LAME_DUCK_GRACE_PERIOD, NatsMini};
use crate::units::format_duration;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "NATS_TOKEN";

/// Environment variable holding the password of user `index`.
pub fn user_password_env(index: usize) -> String {
    format!("NATS_USER_{index}_PASSWORD")
}

/// Environment variable holding the pod's name (used as `server_name`).
pub const POD_NAME_ENV: &str = "POD_NAME";

/// The route URL of every ordinal `0..replicas`, self included (the broker drops a route to
/// itself once it sees its own server id).
pub fn route_urls(nm: &NatsMini, names: &Names) -> Vec<String> {
    (0..nm.spec.replicas.max(0))
        .map(|i| format!("nats://{}:{}", names.pod_host(i), nm.spec.cluster.port))
        .collect()
}

/// The config file text. Assumes a validated spec (see [`super::render`]).
pub fn config_text(nm: &NatsMini, names: &Names) -> String {
    let spec = &nm.spec;
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "# nats-mini configuration of NatsMini {}/{}, written by nats-mini-operator.",
        names.namespace, names.base
    ));
    line(
        "# Do not edit: the operator overwrites this file. The brokers reload it when it changes."
            .into(),
    );
    line("# Secrets appear only as $VARIABLES, which the pod sets from Secret keys.".into());
    line(String::new());
    line(format!("server_name: ${POD_NAME_ENV}"));
    line(format!("listen: \"0.0.0.0:{CLIENT_PORT}\""));
    line(format!("http: \"0.0.0.0:{}\"", spec.monitoring.port));

    let l = &spec.limits;
    if let Some(n) = l.max_connections {
        line(format!("max_connections: {n}"));
    }
    for (key, size) in [
        ("max_payload", &l.max_payload),
        ("max_pending", &l.max_pending),
        ("max_control_line", &l.max_control_line),
    ] {
        if let Some(bytes) = size.as_ref().and_then(|s| s.bytes().ok()) {
            line(format!("{key}: {bytes}"));
        }
    }
    for (key, d) in [
        ("write_deadline", &l.write_deadline),
        ("ping_interval", &l.ping_interval),
        ("busy_poll", &l.busy_poll),
    ] {
        if let Some(d) = d {
            line(format!("{key}: \"{d}\""));
        }
    }
    if let Some(n) = l.max_pings_out {
        line(format!("ping_max: {n}"));
    }
    line(format!(
        "lame_duck_duration: \"{}\"",
        spec.lame_duck_duration
    ));
    line(format!(
        "lame_duck_grace_period: \"{}\"",
        format_duration(LAME_DUCK_GRACE_PERIOD)
    ));

    if let Some(auth) = &spec.auth {
        line(String::new());
        line("authorization {".into());
        if auth.token.is_some() {
            line(format!("  token: ${TOKEN_ENV}"));
        }
        if let Some(users) = &auth.users {
            line("  users: [".into());
            for (i, u) in users.users.iter().enumerate() {
                line(format!(
                    "    {{ user: \"{}\", password: ${} }}",
                    u.username,
                    user_password_env(i)
                ));
            }
            line("  ]".into());
        }
        line("}".into());
    }

    if let Some(tls) = &spec.tls {
        line(String::new());
        line("tls {".into());
        line(format!("  cert_file: \"{TLS_DIR}/tls.crt\""));
        line(format!("  key_file: \"{TLS_DIR}/tls.key\""));
        if tls.verify_clients {
            line(format!("  ca_file: \"{TLS_DIR}/ca.crt\""));
            line("  verify: true".into());
        }
        line("}".into());
    }

    line(String::new());
    line("cluster {".into());
    line(format!("  name: \"{}\"", spec.cluster_name(&names.base)));
    line(format!("  listen: \"0.0.0.0:{}\"", spec.cluster.port));
    // Clients get the client Service, not pod addresses, as in the official chart.
    line("  no_advertise: true".into());
    let routes = route_urls(nm, names);
    if routes.is_empty() {
        line("  routes: []".into());
    } else {
        line("  routes: [".into());
        for r in routes {
            line(format!("    \"{r}\""));
        }
        line("  ]".into());
    }
    line("}".into());
    out
}

/// The ConfigMap `NAME-config` holding [`config_text`] under [`CONFIG_FILE`].
pub fn config_map(nm: &NatsMini, names: &Names) -> ConfigMap {
    ConfigMap {
        metadata: object_meta(names, &names.config_map),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_string(),
            config_text(nm, names),
        )])),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderContext;

    fn natsmini(yaml: &str) -> (NatsMini, Names) {
        let mut nm: NatsMini = serde_yaml::from_str(&format!(
            "apiVersion: nats-mini.io/v1alpha1\nkind: NatsMini\nmetadata: {{name: demo, namespace: prod}}\nspec: {yaml}\n"
        ))
        .unwrap();
        nm.spec.validate().unwrap();
        let names = Names::new(&nm, &RenderContext::default()).unwrap();
        nm.metadata.namespace = Some("prod".into());
        (nm, names)
    }

    #[test]
    fn minimal_config_has_listeners_lame_duck_and_a_one_route_cluster() {
        let (nm, names) = natsmini("{}");
        let text = config_text(&nm, &names);
        assert_eq!(
            text.lines().skip(4).collect::<Vec<_>>(),
            [
                "server_name: $POD_NAME",
                "listen: \"0.0.0.0:4222\"",
                "http: \"0.0.0.0:8222\"",
                "lame_duck_duration: \"30s\"",
                "lame_duck_grace_period: \"10s\"",
                "",
                "cluster {",
                "  name: \"demo\"",
                "  listen: \"0.0.0.0:6222\"",
                "  no_advertise: true",
                "  routes: [",
                "    \"nats://demo-0.demo-headless.prod.svc.cluster.local:6222\"",
                "  ]",
                "}",
            ]
        );
    }

    #[test]
    fn limits_are_written_in_bytes_and_go_durations() {
        let (nm, names) = natsmini(
            "{limits: {maxConnections: 1000000, maxPayload: 2mb, maxPending: 1GB, maxControlLine: 8k, writeDeadline: 5s, pingInterval: 1m30s, busyPoll: 20us, maxPingsOut: 3}}",
        );
        let text = config_text(&nm, &names);
        for want in [
            "max_connections: 1000000\n",
            "max_payload: 2097152\n",
            "max_pending: 1073741824\n",
            "max_control_line: 8000\n",
            "write_deadline: \"5s\"\n",
            "ping_interval: \"1m30s\"\n",
            "busy_poll: \"20us\"\n",
            "ping_max: 3\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }

    #[test]
    fn busy_poll_is_written_as_given_and_only_when_set() {
        // Unset: no key, the broker's default (50us) applies.
        let (nm, names) = natsmini("{}");
        assert!(!config_text(&nm, &names).contains("busy_poll"));
        // "0" turns it off; the micro sign is kept as written (the broker reads it like Go).
        for (given, line) in [
            ("'0'", "busy_poll: \"0\"\n"),
            ("50us", "busy_poll: \"50us\"\n"),
            ("50\u{b5}s", "busy_poll: \"50\u{b5}s\"\n"),
        ] {
            let (nm, names) = natsmini(&format!("{{limits: {{busyPoll: {given}}}}}"));
            let text = config_text(&nm, &names);
            assert!(text.contains(line), "{line:?} missing from\n{text}");
            // Right after the other durations, as the chart writes it.
            let (nm, names) = natsmini(&format!(
                "{{limits: {{writeDeadline: 5s, pingInterval: 2m, busyPoll: {given}, maxPingsOut: 3}}}}"
            ));
            let text = config_text(&nm, &names);
            assert!(
                text.contains(&format!(
                    "write_deadline: \"5s\"\nping_interval: \"2m\"\n{line}ping_max: 3\n"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn token_and_users_are_variables_only() {
        let (nm, names) = natsmini("{auth: {token: {secretName: tok}}}");
        let text = config_text(&nm, &names);
        assert!(
            text.contains("authorization {\n  token: $NATS_TOKEN\n}\n"),
            "{text}"
        );
        let (nm, names) = natsmini(
            "{auth: {users: {secretName: pw, users: [{username: alice}, {username: bob, passwordKey: b}]}}}",
        );
        let text = config_text(&nm, &names);
        assert!(
            text.contains(
                "  users: [\n    { user: \"alice\", password: $NATS_USER_0_PASSWORD }\n    { user: \"bob\", password: $NATS_USER_1_PASSWORD }\n  ]\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn tls_paths_point_into_the_mounted_secret() {
        let (nm, names) = natsmini("{tls: {secretName: certs, verifyClients: true}}");
        let text = config_text(&nm, &names);
        assert!(text.contains(
            "tls {\n  cert_file: \"/etc/nats-mini-tls/tls.crt\"\n  key_file: \"/etc/nats-mini-tls/tls.key\"\n  ca_file: \"/etc/nats-mini-tls/ca.crt\"\n  verify: true\n}\n"
        ), "{text}");
    }

    #[test]
    fn routes_list_every_ordinal_with_the_cluster_port_and_name() {
        let (nm, names) = natsmini("{replicas: 3, cluster: {port: 7222, name: mesh}}");
        let text = config_text(&nm, &names);
        assert!(
            text.contains("  name: \"mesh\"\n  listen: \"0.0.0.0:7222\"\n"),
            "{text}"
        );
        for i in 0..3 {
            assert!(text.contains(&format!(
                "    \"nats://demo-{i}.demo-headless.prod.svc.cluster.local:7222\"\n"
            )));
        }
        let (nm, names) = natsmini("{replicas: 0}");
        assert!(config_text(&nm, &names).contains("  routes: []\n"));
    }
}
