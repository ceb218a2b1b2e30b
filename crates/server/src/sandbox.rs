//! `switchboard sandbox`: the gateway plus the provider simulator on loopback, with the
//! configuration in `config/default.toml`, so a newcomer can send every message type with no
//! credentials and see the exact provider payload each one became.

use crate::app::{self, Signals};
use crate::config::{self, ConfigError, ConfigErrors, Settings};
use std::net::{SocketAddr, TcpListener};
use switchboard_sim::{SimCredentials, Simulator};

/// The sandbox configuration, built into the binary so the command works from any directory.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

/// The sandbox settings with every provider pointed at `sim` and the gateway on `port`.
pub fn settings_for(
    sim: &Simulator,
    credentials: &SimCredentials,
    port: u16,
) -> Result<Settings, ConfigErrors> {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let overrides: Vec<(String, String)> = vec![
        ("server.listen".into(), listen.to_string()),
        ("server.public_url".into(), format!("http://{listen}")),
        ("providers.meta.base_url".into(), sim.meta_base_url()),
        (
            "providers.meta.access_token".into(),
            credentials.meta_access_token.clone(),
        ),
        ("providers.legacy.base_url".into(), sim.generic_base_url()),
        (
            "providers.legacy.auth_header".into(),
            credentials.generic_auth_header.clone(),
        ),
        (
            "providers.legacy.auth_value".into(),
            credentials.generic_auth_value.clone(),
        ),
    ];
    let mut builder = ::config::Config::builder().add_source(::config::File::from_str(
        DEFAULT_CONFIG,
        ::config::FileFormat::Toml,
    ));
    let mut set = |key: String, value: String| -> Result<(), ConfigError> {
        let b = std::mem::take(&mut builder);
        builder = b
            .set_override(key.as_str(), value)
            .map_err(|e| ConfigError::new(key, e.to_string()))?;
        Ok(())
    };
    for (key, value) in overrides {
        set(key, value)?;
    }
    for (i, pod) in ["in", "sg", "eu"].iter().enumerate() {
        set(
            format!("providers.kaleyra.pods[{i}].base_url"),
            sim.kaleyra_pod_base_url(pod),
        )?;
        let key = credentials
            .kaleyra_api_keys
            .get(*pod)
            .cloned()
            .unwrap_or_default();
        set(format!("providers.kaleyra.pods[{i}].api_key"), key)?;
    }
    let tree = builder
        .build()
        .map_err(|e| ConfigError::new("config/default.toml", e.to_string()))?;
    config::resolve(tree, &|name| std::env::var(name).ok())
}

/// The simulator's port unless `--sim-port` says otherwise: fixed, so that the README's
/// simulator examples can be pasted as written.
pub const DEFAULT_SIM_PORT: u16 = 8090;

pub async fn run(port: u16, sim_port: u16) -> std::io::Result<()> {
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(listen).map_err(|e| app::bind_error(listen, e, "--port"))?;
    let credentials = SimCredentials::sandbox();
    let sim_addr = SocketAddr::from(([127, 0, 0, 1], sim_port));
    let sim = Simulator::start(sim_addr, credentials.clone())
        .await
        .map_err(|e| app::bind_error(sim_addr, e, "--sim-port"))?;
    let settings = settings_for(&sim, &credentials, listener.local_addr()?.port())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = settings
        .clients
        .first()
        .map(|c| secrecy::ExposeSecret::expose_secret(&c.token).to_string())
        .unwrap_or_default();
    let gateway = format!("http://{}", listener.local_addr()?);
    let (server, state) = app::start(settings, listener, Signals::Handle).await?;
    println!("{}", banner(&gateway, &sim.base_url(), &token));
    let served = server.await;
    // Everything stops before the process exits, so nothing logs into a closed log writer.
    app::drain_queue(&state).await;
    app::write_late_records(&state).await;
    sim.stop().await;
    state.store.close().await;
    served
}

fn banner(gateway: &str, sim: &str, token: &str) -> String {
    format!(
        r#"Switchboard sandbox is running.
  gateway:    {gateway}
  simulator:  {sim}  (Meta, Kaleyra pods in/sg/eu, generic; see what they received at {sim}/_sim/requests)
  client token (sandbox only): {token}

Send a message (it goes to Kaleyra pod "in" first):
  curl -s -X POST {gateway}/v1/messages \
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
    -d '{{"to": "+14085551234", "type": "text", "text": {{"body": "Hello from Switchboard"}}}}'

See the exact provider request without sending: add ?dry_run=true. Pick a provider: "provider": "meta" or "legacy".
See a message's status: curl -s {gateway}/v1/messages/<id> -H 'Authorization: Bearer {token}'
Endpoint circuits: {gateway}/v1/providers (same token); metrics: {gateway}/metrics
Make a pod fail: curl -s -X PUT {sim}/_sim/behaviour/kaleyra/in -d '{{"mode": "error", "code": "WA500"}}'
Stop with Ctrl-C."#
    )
}
