//! Configuration resolution: the example files, every problem named by its key, secrets
//! never shown, environment overrides.

use secrecy::ExposeSecret;
use std::collections::HashMap;
use switchboard_server::config::{read_layers, resolve, ConfigError, ConfigErrors, Settings};

const PRODUCTION_EXAMPLE: &str = include_str!("../../../config/production.example.toml");
const SANDBOX: &str = include_str!("../../../config/default.toml");

fn tree(toml: &str) -> config::Config {
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .expect("valid TOML")
}

fn production_env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ORDERS_TOKEN", "orders-secret-token"),
        ("SUPPORT_TOKEN", "support-secret-token"),
        ("META_ACCESS_TOKEN", "meta-secret-token"),
        ("META_APP_SECRET", "meta-app-secret"),
        ("META_VERIFY_TOKEN", "meta-verify"),
        ("KALEYRA_API_KEY", "kaleyra-in-secret"),
        ("KALEYRA_SG_API_KEY", "kaleyra-sg-secret"),
        ("KALEYRA_EU_API_KEY", "kaleyra-eu-secret"),
        ("KALEYRA_CALLBACK_TOKEN", "kaleyra-callback"),
        ("LEGACY_AUTH", "legacy-secret"),
        ("LEGACY_CALLBACK_TOKEN", "legacy-callback"),
        ("EVENTS_SECRET", "events-secret"),
    ])
}

fn resolve_with(
    toml: &str,
    env: &HashMap<&str, &str>,
) -> std::result::Result<Settings, ConfigErrors> {
    resolve(tree(toml), &|name| env.get(name).map(|v| v.to_string()))
}

/// The one problem in `toml`.
#[track_caller]
fn error_key(toml: &str) -> ConfigError {
    let errors = resolve_with(toml, &production_env()).expect_err("should be invalid");
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.0[0].clone()
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let errors = resolve_with(PRODUCTION_EXAMPLE, &HashMap::new()).expect_err("no variables set");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "clients[0].token_env",
            "clients[1].token_env",
            "providers.kaleyra.api_key_env",
            "providers.kaleyra.callback_token_env",
            "providers.kaleyra.pods[1].api_key_env",
            "providers.kaleyra.pods[2].api_key_env",
            "providers.legacy.auth_value_env",
            "providers.legacy.callback_token_env",
            "providers.meta.access_token_env",
            "providers.meta.app_secret_env",
            "providers.meta.verify_token_env",
            "webhooks.subscribers[0].secret_env",
        ]
    );
    let text = errors.to_string();
    assert!(
        text.starts_with(
            "12 problems:\n  clients[0].token_env: environment variable ORDERS_TOKEN is not set"
        ),
        "{text}"
    );
    for variable in production_env().keys() {
        assert!(text.contains(variable), "{variable} missing from\n{text}");
    }

    // Problems of other kinds come in the same report.
    let mut env = production_env();
    env.remove("META_APP_SECRET");
    let broken = PRODUCTION_EXAMPLE
        .replace("max_body_bytes = 65536", "max_body_bytes = 0")
        .replace("wa_source = \"api\"", "wa_source = \"sms\"")
        .replace(
            "default_sender = \"+15550783881\"",
            "default_sender = \"+15559999999\"",
        );
    let errors = resolve_with(&broken, &env).expect_err("invalid");
    let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.max_body_bytes",
            "providers.kaleyra.wa_source",
            "routing.default_sender",
            "providers.meta.app_secret_env",
        ],
        "{errors}"
    );
}

#[test]
fn the_production_example_resolves_to_the_documented_route() {
    let settings = resolve_with(PRODUCTION_EXAMPLE, &production_env()).unwrap();
    let sender = &settings.senders["+15550783881"];
    let ids: Vec<String> = settings
        .route_endpoints(&sender.route)
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids, ["kaleyra/in", "kaleyra/sg", "kaleyra/eu", "meta"]);
    assert_eq!(
        settings.endpoints["kaleyra/in"].base_url,
        "https://api.in.kaleyra.io"
    );
    assert_eq!(
        settings.endpoints["kaleyra/sg"].base_url,
        "https://api.ap.kaleyra.io"
    );
    assert_eq!(
        settings.endpoints["kaleyra/eu"].base_url,
        "https://api.eu.kaleyra.io"
    );
    assert_eq!(settings.default_sender.as_deref(), Some("+15550783881"));
    assert_eq!(
        settings.clients[0].token.expose_secret(),
        "orders-secret-token"
    );
    assert_eq!(settings.webhooks.subscribers.len(), 1);
    assert_eq!(settings.resilience.failover_on.len(), 4);
}

#[test]
fn each_pod_uses_its_own_credentials_or_the_instance_ones() {
    let settings = resolve_with(PRODUCTION_EXAMPLE, &production_env()).unwrap();
    let sender = settings.senders["+15550783881"].clone();
    let message = switchboard_core::parse::message_from_value(serde_json::json!(
        {"to": "+14085551234", "type": "text", "text": {"body": "x"}}))
    .unwrap();
    let context = switchboard_core::RenderContext {
        message_id: "01JD3W6Q8S3M1V2H7KX2F5N9ZC",
        sender_number: &sender.number,
        phone_number_id: sender.phone_number_id.as_deref(),
    };
    let key_and_url = |id: &str| {
        let request = settings.endpoints[id]
            .adapter
            .render(&message, &context)
            .unwrap();
        let key = request
            .headers
            .iter()
            .find(|(n, _)| n == "api-key")
            .unwrap()
            .1
            .expose()
            .to_string();
        (key, request.url)
    };
    assert_eq!(
        key_and_url("kaleyra/in"),
        (
            "kaleyra-in-secret".into(),
            "https://api.in.kaleyra.io/v2/HXAP16XXXXXX97IN/whatsapp/+15550783881/messages".into()
        )
    );
    assert_eq!(
        key_and_url("kaleyra/sg"),
        (
            "kaleyra-sg-secret".into(),
            "https://api.ap.kaleyra.io/v2/HXAP16XXXXXX97SG/whatsapp/+15550783881/messages".into()
        )
    );
    assert_eq!(key_and_url("kaleyra/eu").0, "kaleyra-eu-secret");
}

#[test]
fn the_sandbox_config_resolves() {
    let settings = resolve_with(SANDBOX, &HashMap::new()).unwrap();
    assert_eq!(settings.endpoints.len(), 5);
}

#[test]
fn debug_output_of_settings_holds_no_secret() {
    let settings = resolve_with(PRODUCTION_EXAMPLE, &production_env()).unwrap();
    let printed = format!(
        "{settings:?}\n{}",
        switchboard_server::config::describe(&settings)
    );
    for secret in production_env().values() {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

#[test]
fn unknown_keys_are_named() {
    let e =
        error_key(&PRODUCTION_EXAMPLE.replace("max_body_bytes = 65536", "max_body_byte = 65536"));
    assert_eq!(e.key, "server.max_body_byte");
    let e = error_key(&PRODUCTION_EXAMPLE.replace("waba_id = ", "wabaid = "));
    assert_eq!(e.key, "providers.meta.wabaid");
    let e = error_key(&format!("{PRODUCTION_EXAMPLE}\n[surprise]\nx = 1\n"));
    assert_eq!(e.key, "surprise");
}

#[test]
fn secrets_need_exactly_one_form_and_a_set_variable() {
    let e = error_key(&PRODUCTION_EXAMPLE.replace("access_token_env = \"META_ACCESS_TOKEN\"", ""));
    assert_eq!(e.key, "providers.meta.access_token");
    let e = error_key(&PRODUCTION_EXAMPLE.replace(
        "access_token_env = \"META_ACCESS_TOKEN\"",
        "access_token_env = \"META_ACCESS_TOKEN\"\naccess_token = \"inline\"",
    ));
    assert_eq!(e.key, "providers.meta.access_token");
    let mut env = production_env();
    env.remove("META_ACCESS_TOKEN");
    let errors = resolve_with(PRODUCTION_EXAMPLE, &env).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let e = &errors.0[0];
    assert_eq!(e.key, "providers.meta.access_token_env");
    assert!(e.message.contains("META_ACCESS_TOKEN"), "{}", e.message);
    assert!(!e.message.contains("meta-secret-token"));
}

#[test]
fn routes_and_senders_are_checked() {
    let e = error_key(&PRODUCTION_EXAMPLE.replace(
        "route = [\"kaleyra\", \"meta\"]",
        "route = [\"kaleyra\", \"whatsapp\"]",
    ));
    assert_eq!(e.key, "senders[0].route[1]");
    let e = error_key(&PRODUCTION_EXAMPLE.replace("phone_number_id = \"106540352242922\"", ""));
    assert_eq!(e.key, "senders[0].phone_number_id");
    let e = error_key(&PRODUCTION_EXAMPLE.replace(
        "default_sender = \"+15550783881\"",
        "default_sender = \"+15550000000\"",
    ));
    assert_eq!(e.key, "routing.default_sender");
    let e = error_key(
        &PRODUCTION_EXAMPLE.replace("number = \"+15550001234\"", "number = \"15550783881\""),
    );
    assert_eq!(e.key, "senders[1].number");
    let e =
        error_key(&PRODUCTION_EXAMPLE.replace("number = \"+15550001234\"", "number = \"call me\""));
    assert_eq!(e.key, "senders[1].number");
}

#[test]
fn queue_settings_and_pacing_budgets_are_checked() {
    let settings = resolve_with(PRODUCTION_EXAMPLE, &production_env()).unwrap();
    assert_eq!(settings.senders["+15550783881"].max_per_second, 80);
    // A sender without the key gets Meta's default budget.
    assert_eq!(settings.senders["+15550001234"].max_per_second, 80);
    assert_eq!(settings.queue.workers, 64);
    assert_eq!(settings.queue.max_attempts, 6);
    assert_eq!(settings.queue.lease_secs, 15);
    assert_eq!(settings.server.max_batch_bytes, 4 * 1024 * 1024);
    for (from, to, key) in [
        (
            "max_per_second = 80",
            "max_per_second = 0",
            "senders[0].max_per_second",
        ),
        (
            "max_per_second = 80",
            "max_per_second = 1001",
            "senders[0].max_per_second",
        ),
        ("workers = 64", "workers = 0", "queue.workers"),
        ("max_attempts = 6", "max_attempts = 0", "queue.max_attempts"),
        (
            "retry_base_ms = 1000         #",
            "retry_base_ms = 0 #",
            "queue.retry_base_ms",
        ),
        ("lease_secs = 15", "lease_secs = 0", "queue.lease_secs"),
        (
            "max_batch_bytes = 4194304",
            "max_batch_bytes = 0",
            "server.max_batch_bytes",
        ),
    ] {
        assert!(PRODUCTION_EXAMPLE.contains(from), "{from}");
        assert_eq!(
            error_key(&PRODUCTION_EXAMPLE.replace(from, to)).key,
            key,
            "{to}"
        );
    }
    let e = error_key(&format!("{PRODUCTION_EXAMPLE}\n[queue.extra]\n"));
    assert!(e.key.contains("queue"), "{e}");
}

#[test]
fn provider_settings_are_checked() {
    let e = error_key(&PRODUCTION_EXAMPLE.replace("wa_source = \"api\"", "wa_source = \"sms\""));
    assert_eq!(e.key, "providers.kaleyra.wa_source");
    let e = error_key(&PRODUCTION_EXAMPLE.replace("name = \"sg\"", "name = \"us\""));
    assert_eq!(e.key, "providers.kaleyra.pods[1].name");
    let e = error_key(&PRODUCTION_EXAMPLE.replace("kind = \"generic\"", "kind = \"sms\""));
    assert_eq!(e.key, "providers.legacy.kind");
    let e = error_key(&PRODUCTION_EXAMPLE.replace(
        "failover_on = [\"provider_unavailable\"",
        "failover_on = [\"server_on_fire\"",
    ));
    assert_eq!(e.key, "resilience.failover_on[0]");
    let e = error_key(&PRODUCTION_EXAMPLE.replace(
        "base_url = \"https://bsp.example.com\"",
        "base_url = \"bsp.example.com\"",
    ));
    assert_eq!(e.key, "providers.legacy.base_url");
    let e = error_key(
        &PRODUCTION_EXAMPLE.replace("listen = \"0.0.0.0:8080\"", "listen = \"everywhere\""),
    );
    assert_eq!(e.key, "server.listen");
}

#[test]
fn environment_overrides_use_double_underscores() {
    let dir = std::env::temp_dir().join(format!("switchboard-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, SANDBOX).unwrap();
    // The only test that touches the process environment, with a key no other test reads.
    std::env::set_var("SWITCHBOARD__SERVER__SHUTDOWN_TIMEOUT_SECS", "7");
    let settings = resolve(read_layers(&path).unwrap(), &|_| None).unwrap();
    std::env::remove_var("SWITCHBOARD__SERVER__SHUTDOWN_TIMEOUT_SECS");
    assert_eq!(settings.server.shutdown_timeout_secs, 7);
}

#[test]
fn a_syntax_error_does_not_quote_the_line_that_may_hold_a_secret() {
    let dir = std::env::temp_dir().join(format!("switchboard-syntax-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[clients]]\nname = \"a\"\ntoken = \"super-secret-value\n",
    )
    .unwrap();
    let error = read_layers(&path).unwrap_err();
    assert_eq!(error.key, "file");
    assert!(error.message.contains("line 3"), "{}", error.message);
    assert!(
        !error.message.contains("super-secret-value"),
        "{}",
        error.message
    );
}
