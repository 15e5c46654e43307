//! Property tests of the renderer over generated NatsMinis: the route list, name lengths,
//! label consistency, secrets, termination grace, and agreement between the unit parsers and
//! the patterns the CRD publishes.

use nats_mini_operator::crd::{
    AuthSpec, NatsMiniSpec, SecretKeyRef, TlsSpec, TuningMode, UserSpec, UsersSpec,
};
use nats_mini_operator::render::{
    MAX_NAME_LEN, REVISION_SUFFIX_LEN, RenderContext, Rendered, render, selector_labels,
};
use nats_mini_operator::units::{
    DURATION_PATTERN, GoDuration, SIZE_PATTERN, Size, UnitError, parse_duration, parse_size,
};
use nats_mini_operator::{Error, NatsMini};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CONFIG_KEY: &str = "nats-mini.conf";

#[derive(Debug, Clone)]
struct Case {
    name: String,
    namespace: String,
    domain: String,
    spec: NatsMiniSpec,
}

impl Case {
    fn natsmini(&self) -> NatsMini {
        let mut nm = NatsMini::new(&self.name, self.spec.clone());
        nm.metadata.namespace = Some(self.namespace.clone());
        nm
    }
    fn ctx(&self) -> RenderContext {
        RenderContext {
            cluster_domain: self.domain.clone(),
            ..RenderContext::default()
        }
    }
}

fn dns_label(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z]([a-z0-9-]{{0,{}}}[a-z0-9])?", max - 2))
        .expect("valid regex")
}

fn auth() -> impl Strategy<Value = Option<AuthSpec>> {
    let user = (
        "[A-Za-z0-9._@-]{1,12}",
        proptest::option::of("[a-z0-9._-]{1,12}"),
    );
    prop_oneof![
        Just(None),
        ("[a-z][a-z0-9-]{0,20}", "[a-z0-9._-]{1,20}").prop_map(|(secret_name, key)| Some(
            AuthSpec {
                token: Some(SecretKeyRef { secret_name, key }),
                users: None,
            }
        )),
        (
            "[a-z][a-z0-9-]{0,20}",
            proptest::collection::btree_map(user.0, user.1, 1..5)
        )
            .prop_map(|(secret_name, users)| Some(AuthSpec {
                token: None,
                users: Some(UsersSpec {
                    secret_name,
                    users: users
                        .into_iter()
                        .map(|(username, password_key)| UserSpec {
                            // A user name with '@' is no Secret key, so it needs its own.
                            password_key: password_key.or_else(|| {
                                username.contains('@').then(|| username.replace('@', "."))
                            }),
                            username,
                        })
                        .collect(),
                }),
            })),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        // Up to 60 characters: some fit, some are refused as too long.
        dns_label(60),
        dns_label(30),
        prop_oneof![
            Just("cluster.local".to_string()),
            Just("k8s.example.com".to_string())
        ],
        0..=15i32,
        auth(),
        proptest::option::of(("[a-z][a-z0-9-]{0,20}", any::<bool>())),
        prop_oneof![
            Just(TuningMode::None),
            Just(TuningMode::Sysctls),
            Just(TuningMode::InitContainer)
        ],
        // Disjoint ranges, both clear of the client port 4222: the ports must differ.
        (5000..=30000i32, 30001..=65535i32),
        proptest::option::of(1..=100_000_000i64),
        (
            30u64..=600,
            proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                name,
                namespace,
                domain,
                replicas,
                auth,
                tls,
                mode,
                ports,
                max_conn,
                (ldm, labels, service_monitor),
            )| {
                let mut spec: NatsMiniSpec =
                    serde_json::from_str("{}").expect("empty spec takes defaults");
                spec.replicas = replicas;
                spec.auth = auth;
                spec.tls = tls.map(|(secret_name, verify_clients)| TlsSpec {
                    secret_name,
                    verify_clients,
                });
                spec.tuning.mode = mode;
                spec.cluster.port = ports.0;
                spec.monitoring.port = ports.1;
                spec.limits.max_connections = max_conn;
                spec.lame_duck_duration = GoDuration(format!("{ldm}s"));
                spec.pod.labels = labels;
                spec.monitoring.service_monitor.enabled = service_monitor;
                Case {
                    name,
                    namespace,
                    domain,
                    spec,
                }
            },
        )
}

fn config_text(r: &Rendered) -> &str {
    r.config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .expect("config key")
}

/// The route URLs in the config's `cluster { routes: [...] }` block.
fn routes_in(config: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_routes = false;
    for line in config.lines() {
        let t = line.trim();
        if t == "routes: []" {
            return out;
        }
        if t == "routes: [" {
            in_routes = true;
            continue;
        }
        if in_routes {
            if t == "]" {
                break;
            }
            out.push(t.trim_matches('"').to_string());
        }
    }
    out
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn derived_names_fit(c: &Case) -> bool {
    let last = c.spec.replicas.max(1) - 1;
    [
        c.name.len() + "-headless".len(),
        c.name.len() + "-config".len(),
        c.name.len() + 1 + last.to_string().len(),
        c.name.len() + REVISION_SUFFIX_LEN,
    ]
    .iter()
    .all(|&l| l <= MAX_NAME_LEN)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn render_succeeds_exactly_when_every_name_fits(c in case()) {
        match render(&c.natsmini(), &c.ctx()) {
            Ok(_) => prop_assert!(derived_names_fit(&c)),
            Err(Error::InvalidName { .. }) => prop_assert!(!derived_names_fit(&c)),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn routes_name_every_ordinal_once_with_a_well_formed_url(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let r = render(&c.natsmini(), &c.ctx()).expect("renders");
        let routes = routes_in(config_text(&r));
        prop_assert_eq!(routes.len(), c.spec.replicas as usize);
        for (i, url) in routes.iter().enumerate() {
            let rest = url.strip_prefix("nats://").expect("nats:// scheme");
            let (host, port) = rest.rsplit_once(':').expect("host:port");
            prop_assert_eq!(port.parse::<i32>().ok(), Some(c.spec.cluster.port));
            prop_assert!(host.len() <= 253);
            prop_assert!(host.split('.').all(is_dns_label), "{}", host);
            let want = format!(
                "{}-{i}.{}-headless.{}.svc.{}",
                c.name, c.name, c.namespace, c.domain
            );
            prop_assert_eq!(host, want.as_str());
        }
    }

    #[test]
    fn every_name_fits_in_63_characters(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let r = render(&c.natsmini(), &c.ctx()).expect("renders");
        for v in r.to_values().expect("values") {
            let name = v["metadata"]["name"].as_str().expect("name");
            prop_assert!(is_dns_label(name), "{}", name);
            for value in v["metadata"]["labels"].as_object().expect("labels").values() {
                prop_assert!(value.as_str().expect("string").len() <= 63);
            }
        }
        for i in 0..c.spec.replicas {
            let pod = format!("{}-{i}", c.name);
            prop_assert!(is_dns_label(&pod), "{}", pod);
        }
        prop_assert!(c.name.len() + REVISION_SUFFIX_LEN <= 63);
    }

    #[test]
    fn selectors_are_subsets_of_the_pod_labels(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let r = render(&c.natsmini(), &c.ctx()).expect("renders");
        let sts = r.stateful_set.spec.as_ref().expect("spec");
        let pod_labels = sts.template.metadata.as_ref().and_then(|m| m.labels.clone()).expect("pod labels");
        let sts_selector = sts.selector.match_labels.clone().expect("selector");
        let pdb_selector = r.pdb.spec.as_ref().and_then(|s| s.selector.as_ref()).and_then(|s| s.match_labels.clone()).expect("pdb selector");
        let svc_selectors = [&r.headless_service, &r.client_service].map(|s| {
            s.spec.as_ref().and_then(|s| s.selector.clone()).expect("service selector")
        });
        let subset = |sel: &BTreeMap<String, String>| sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v));
        prop_assert!(subset(&sts_selector));
        prop_assert!(subset(&pdb_selector));
        for s in &svc_selectors {
            prop_assert!(subset(s));
        }
        prop_assert_eq!(&sts_selector, &pdb_selector);
        // The selector is the stable subset and every object carries it.
        prop_assert_eq!(sts_selector.len(), 3);
        for v in r.to_values().expect("values") {
            let labels = v["metadata"]["labels"].as_object().expect("labels");
            for (k, val) in &sts_selector {
                prop_assert_eq!(labels.get(k).and_then(|x| x.as_str()), Some(val.as_str()));
            }
        }
        // The selector depends only on the name: user labels cannot move it.
        let mut plain = c.clone();
        plain.spec.pod.labels.clear();
        let r2 = render(&plain.natsmini(), &plain.ctx()).expect("renders");
        prop_assert_eq!(
            r2.stateful_set.spec.expect("spec").selector.match_labels,
            Some(sts_selector)
        );
        let names = nats_mini_operator::render::Names::new(&c.natsmini(), &c.ctx()).expect("names");
        prop_assert_eq!(selector_labels(&names).len(), 3);
    }

    #[test]
    fn secrets_appear_only_as_variables_filled_from_secret_keys(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let r = render(&c.natsmini(), &c.ctx()).expect("renders");
        let config = config_text(&r);
        let container = &r.stateful_set.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod").containers[0];
        let env = container.env.clone().unwrap_or_default();
        // Every credential in the config is a $VARIABLE ...
        let mut referenced = Vec::new();
        for line in config.lines() {
            for key in ["token:", "password:"] {
                if let Some(pos) = line.find(key) {
                    let value = line[pos + key.len()..].trim().trim_end_matches('}').trim();
                    prop_assert!(value.starts_with('$'), "literal credential in {}", line);
                    referenced.push(value[1..].to_string());
                }
            }
        }
        let expected = match &c.spec.auth {
            None => 0,
            Some(a) => a.token.iter().count() + a.users.as_ref().map_or(0, |u| u.users.len()),
        };
        prop_assert_eq!(referenced.len(), expected);
        // ... that the container sets from a Secret key, never from a literal value.
        for var in &referenced {
            let e = env.iter().find(|e| &e.name == var);
            prop_assert!(e.is_some(), "{} is not set", var);
            let e = e.expect("checked");
            prop_assert!(e.value.is_none());
            prop_assert!(e.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).is_some());
        }
        // Nothing else in the environment comes from a Secret.
        let from_secrets = env.iter().filter(|e| e.value_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some())).count();
        prop_assert_eq!(from_secrets, expected);
    }

    #[test]
    fn termination_grace_outlasts_lame_duck(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let r = render(&c.natsmini(), &c.ctx()).expect("renders");
        let grace = r.stateful_set.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|p| p.termination_grace_period_seconds).expect("grace");
        let ldm = c.spec.lame_duck_duration().expect("ldm").as_secs() as i64;
        prop_assert!(grace > ldm + 10, "grace {} vs lame duck {}", grace, ldm);
    }

    #[test]
    fn rendering_is_deterministic_and_round_trips_through_yaml(c in case()) {
        prop_assume!(derived_names_fit(&c));
        let a = render(&c.natsmini(), &c.ctx()).expect("renders");
        let b = render(&c.natsmini(), &c.ctx()).expect("renders");
        prop_assert_eq!(&a, &b);
        let yaml = a.to_yaml().expect("yaml");
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).expect("yaml doc"))
            .collect();
        prop_assert_eq!(docs, a.to_values().expect("values"));
    }

    #[test]
    fn every_string_the_size_pattern_allows_parses(s in bounded(SIZE_PATTERN)) {
        match parse_size(&s) {
            Ok(_) | Err(UnitError::SizeOverflow(_)) => {}
            Err(e) => prop_assert!(false, "{s:?} matches the pattern but: {e}"),
        }
        let size = Size::Text(s.clone());
        prop_assert_eq!(size.bytes().is_ok(), parse_size(&s).is_ok());
    }

    #[test]
    fn every_string_the_duration_pattern_allows_parses(s in bounded(DURATION_PATTERN)) {
        prop_assert!(parse_duration(&s).is_ok(), "{s:?} matches the pattern but does not parse");
    }
}

/// Strings matching a published pattern, with its unbounded repetitions bounded so the
/// numbers stay parseable (`[0-9]+` → at most 6 digits, a repeated group → at most 4 times).
fn bounded(pattern: &str) -> impl Strategy<Value = String> {
    let p = pattern
        .trim_start_matches('^')
        .trim_end_matches('$')
        .replace("[0-9]+", "[0-9]{1,6}")
        .replace(")+", "){1,4}");
    proptest::string::string_regex(&p).expect("valid regex")
}

#[test]
fn service_monitor_points_at_the_client_services_monitor_port() {
    let mut spec: NatsMiniSpec = serde_json::from_str("{}").expect("defaults");
    spec.monitoring.service_monitor.enabled = true;
    spec.monitoring.service_monitor.interval = Some(GoDuration("15s".into()));
    let mut nm = NatsMini::new("demo", spec);
    nm.metadata.namespace = Some("ns".into());
    let r = render(&nm, &RenderContext::default()).expect("renders");
    let sm = serde_json::to_value(r.service_monitor.as_ref().expect("enabled")).expect("json");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["kind"], "ServiceMonitor");
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "15s");
    let port = endpoint["port"].as_str().expect("port name");
    // Only the client Service exposes that port, so every broker is scraped once.
    let has_port = |svc: &k8s_openapi::api::core::v1::Service| {
        svc.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .is_some_and(|ports| ports.iter().any(|p| p.name.as_deref() == Some(port)))
    };
    assert!(has_port(&r.client_service));
    assert!(!has_port(&r.headless_service));
    let selector = sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector");
    let svc_labels = r.client_service.metadata.labels.clone().expect("labels");
    for (k, v) in selector {
        assert_eq!(
            Some(v.as_str().expect("str")),
            svc_labels.get(k).map(String::as_str)
        );
    }
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"][0], "ns");

    // Off by default.
    let mut nm2 = nm.clone();
    nm2.spec.monitoring.service_monitor.enabled = false;
    assert!(
        render(&nm2, &RenderContext::default())
            .expect("renders")
            .service_monitor
            .is_none()
    );
}
