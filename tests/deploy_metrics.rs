//! What deploy/ says about the gateway holds for the gateway as built:
//! - the Grafana dashboard and the Prometheus alert rules query only metrics that `GET /metrics`
//!   exports (a renamed or misspelled metric would leave a panel empty or an alert silent), and
//!   the dashboard shows every exported metric family;
//! - every gateway configuration under deploy/ passes `switchboard config check`, and each
//!   regional overlay tries its own Kaleyra pod first.
//!
//! `.ci/deploy-check` validates the same files' syntax and structure offline.

#[path = "../crates/server/tests/common/mod.rs"]
mod common;

use common::Gateway;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");
const DASHBOARD: &str = "deploy/grafana/switchboard.json";
const ALERTS: &str = "deploy/prometheus/alerts.yaml";

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The series names a metric family of `kind` is exposed as (OpenMetrics).
fn family_series(family: &str, kind: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
        "summary" => &["", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[""], // gauge, stateset, unknown
    };
    suffixes.iter().map(|s| format!("{family}{s}")).collect()
}

/// Each family of the exposition (its `# TYPE name kind` lines, so that a family without
/// samples yet still counts) with the series names it can return.
fn exported_families(exposition: &str) -> BTreeMap<String, Vec<String>> {
    let families: BTreeMap<String, Vec<String>> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                panic!("malformed TYPE line: # TYPE {rest}");
            };
            (family.to_string(), family_series(family, kind))
        })
        .collect();
    // Every sample present must be one of those names, or the suffix rules above are wrong.
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let sample = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(
            sample.is_empty() || families.values().flatten().any(|s| s == sample),
            "sample {sample} belongs to no TYPE line's family"
        );
    }
    families
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Every identifier starting with `switchboard_` in a PromQL expression. Other names (`up`,
/// functions, label names) are not the gateway's and are not checked.
fn switchboard_names(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in expr.match_indices("switchboard_") {
        if expr[..at].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let name: String = expr[at..]
            .chars()
            .take_while(|&c| is_name_char(c))
            .collect();
        found.push(name);
    }
    found
}

/// The dashboard's queries: panel targets' `expr` and template variables' queries, found
/// anywhere in the JSON (rows nest panels).
fn dashboard_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", Value::String(text)) => {
                        out.push(text.clone())
                    }
                    _ => dashboard_queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// Each alert's name and `expr`, read from the rule file as text: there is no YAML parser
/// among this crate's dependencies. It understands what alerts.yaml uses: `- alert: Name`
/// items with `expr:` either inline or as a block scalar (`expr: |`) whose lines are indented
/// deeper than the key. Comment lines are skipped.
fn alert_exprs(yaml: &str) -> Vec<(String, String)> {
    let mut alerts: Vec<(String, String)> = Vec::new();
    let mut block: Option<usize> = None; // indentation of the `expr:` key while in its block
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(key_indent) = block {
            if trimmed.is_empty() || indent > key_indent {
                if let Some((_, expr)) = alerts.last_mut() {
                    expr.push_str(trimmed);
                    expr.push('\n');
                }
                continue;
            }
            block = None;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alerts.push((name.trim().to_string(), String::new()));
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            let (_, expr) = alerts
                .last_mut()
                .unwrap_or_else(|| panic!("an expr before any alert: {line}"));
            if rest.is_empty() || rest.starts_with('|') || rest.starts_with('>') {
                block = Some(indent);
            } else {
                expr.push_str(rest.trim_matches(['"', '\'']));
            }
        }
    }
    alerts
}

fn unexported(exported: &BTreeSet<String>, used: &BTreeSet<String>) -> BTreeSet<String> {
    used.difference(exported).cloned().collect()
}

#[actix_web::test]
async fn the_dashboard_and_alerts_query_only_exported_metrics() {
    // A send (requests, attempts, latency, circuits) and a webhook (events in), so that the
    // labelled series exist beside the families' TYPE lines.
    let gw = Gateway::start().await;
    let sent = gw
        .send(&json!({"to": "+14085551234", "type": "text", "text": {"body": "hi"}, "provider": "legacy"}))
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap();
    let webhook = gw
        .http
        .post(format!("{}/webhooks/legacy", gw.url))
        .header("x-callback-token", "sim-generic-callback-token")
        .json(&json!({"externalId": id, "status": "delivered"}))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);
    let exposition = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    gw.stop().await;
    let families = exported_families(&exposition);
    let exported: BTreeSet<String> = families.values().flatten().cloned().collect();
    for sample in [
        "switchboard_http_requests_total",
        "switchboard_provider_attempts_total",
        "switchboard_provider_latency_seconds_bucket",
        "switchboard_circuit_state",
        "switchboard_webhook_events_total",
    ] {
        assert!(
            exposition
                .lines()
                .any(|l| l.starts_with(&format!("{sample}{{"))),
            "no {sample} sample after a send and a webhook:\n{exposition}"
        );
    }

    // The dashboard.
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let dashboard_names: BTreeSet<String> =
        queries.iter().flat_map(|q| switchboard_names(q)).collect();
    assert!(
        queries.len() >= 10 && !dashboard_names.is_empty(),
        "found only {} queries in {DASHBOARD}: the extraction is broken",
        queries.len()
    );
    let missing = unexported(&exported, &dashboard_names);
    assert!(
        missing.is_empty(),
        "{DASHBOARD} queries metrics the gateway does not export: {missing:?}\nexported: {exported:?}"
    );

    // Every family is on the dashboard: a new metric needs a panel.
    for (family, series) in &families {
        assert!(
            series.iter().any(|s| dashboard_names.contains(s)),
            "{DASHBOARD} shows nothing of the exported family {family}: add a panel for it"
        );
    }

    // The alert rules.
    let alerts = alert_exprs(&read(ALERTS));
    let rule_count = read(ALERTS)
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("- alert:") || l.trim_start().starts_with("- record:")
        })
        .count();
    assert_eq!(
        alerts.len(),
        rule_count,
        "every rule of {ALERTS} is an alert"
    );
    let mut alert_names = BTreeMap::new();
    for (alert, expr) in &alerts {
        assert!(!expr.trim().is_empty(), "{ALERTS}: {alert} has no expr");
        for name in switchboard_names(expr) {
            alert_names.insert(name, alert.clone());
        }
    }
    assert!(
        !alert_names.is_empty(),
        "{ALERTS} names no switchboard_ metric: the extraction is broken"
    );
    let missing: BTreeMap<_, _> = alert_names
        .iter()
        .filter(|(name, _)| !exported.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{ALERTS} queries metrics the gateway does not export (metric → alert): {missing:?}\nexported: {exported:?}"
    );

    // And the check would catch a slip: a family name without its suffix, a misspelling.
    let slips = BTreeSet::from([
        "switchboard_http_requests".to_string(),
        "switchboard_provider_attempt_total".to_string(),
        "switchboard_provider_latency_seconds".to_string(),
    ]);
    assert_eq!(unexported(&exported, &slips).len(), slips.len());
}

#[test]
fn names_are_extracted_from_promql_and_rule_files() {
    assert_eq!(
        switchboard_names(
            r#"sum by (x) (rate(switchboard_a_total{job="switchboard"}[5m])) / ignore(my_switchboard_b) + switchboard_c:d"#
        ),
        ["switchboard_a_total", "switchboard_c:d"]
    );
    let rules = "groups:\n  - name: g\n    rules:\n      # - alert: Commented\n      - alert: One\n        expr: up == 0\n        for: 1m\n      - alert: Two\n        expr: |\n          rate(switchboard_x_total[5m])\n\n          > 0\n        labels: {}\n";
    let alerts = alert_exprs(rules);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0], ("One".to_string(), "up == 0".to_string()));
    assert_eq!(alerts[1].0, "Two");
    assert_eq!(switchboard_names(&alerts[1].1), ["switchboard_x_total"]);
    assert!(alerts[1].1.contains("> 0"));
}

/// Runs `switchboard config check` on a deploy/ configuration with a fake value for every
/// variable it names, as the Secret or compose would provide them.
fn config_check(path: &str) -> String {
    let text = read(path);
    let mut command = Command::new(BINARY);
    command
        .args(["config", "check", "--config"])
        .arg(repo_file(path))
        .env_clear()
        .env(
            "SWITCHBOARD__STORE__URL",
            "postgres://switchboard:not-a-password@db.invalid:5432/switchboard",
        );
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim().ends_with("_env") {
                let var = value.split('#').next().unwrap().trim().trim_matches('"');
                command.env(var, format!("fake-{var}"));
            }
        }
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{path}: config check failed\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("store: postgres://switchboard:****@db.invalid:5432/switchboard"),
        "{path}: the store is not the PostgreSQL URL from SWITCHBOARD__STORE__URL\n{stdout}"
    );
    assert!(
        stdout.contains("server: listen 0.0.0.0:8080 "),
        "{path}: not listening on 0.0.0.0:8080\n{stdout}"
    );
    stdout
}

#[test]
fn the_deploy_configurations_pass_config_check() {
    config_check("deploy/compose/switchboard.toml");
    let base = config_check("deploy/kubernetes/base/switchboard.toml");
    assert!(
        base.contains("endpoints kaleyra/in, kaleyra/sg, kaleyra/eu, meta"),
        "{base}"
    );
    for (region, endpoints) in [
        ("in", "kaleyra/in, kaleyra/sg, kaleyra/eu, meta"),
        ("sg", "kaleyra/sg, kaleyra/in, kaleyra/eu, meta"),
        ("eu", "kaleyra/eu, kaleyra/in, kaleyra/sg, meta"),
    ] {
        let out = config_check(&format!(
            "deploy/kubernetes/overlays/{region}/switchboard.toml"
        ));
        assert!(
            out.contains(&format!(
                "+15550783881 (default): route kaleyra → meta → endpoints {endpoints}"
            )),
            "region {region}: expected endpoints {endpoints}\n{out}"
        );
    }
}
