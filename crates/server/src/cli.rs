//! `switchboard serve | sandbox | config check` (docs/configuration.md).

use crate::{app, config, sandbox, telemetry};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "WhatsApp messaging gateway: one REST API over several WhatsApp providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, env = "SWITCHBOARD_CONFIG")]
        config: PathBuf,
    },
    /// Run the gateway and a simulator of every provider on loopback, ready to use.
    Sandbox {
        /// The gateway's port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The provider simulator's port.
        #[arg(long, default_value_t = sandbox::DEFAULT_SIM_PORT)]
        sim_port: u16,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config and print the resolved senders, routes and endpoints (secrets masked).
    Check {
        #[arg(long, env = "SWITCHBOARD_CONFIG")]
        config: PathBuf,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { config: path },
        } => match config::load(&path) {
            Ok(settings) => {
                println!("config OK: {}", path.display());
                print!("{}", config::describe(&settings));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("config invalid in {}: {error}", path.display());
                ExitCode::from(2)
            }
        },
        Command::Serve { config: path } => {
            let _logs = telemetry::init();
            let settings = match config::load(&path) {
                Ok(settings) => settings,
                Err(error) => {
                    eprintln!("config invalid in {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            };
            exit_code(actix_web::rt::System::new().block_on(app::serve(settings, path)))
        }
        Command::Sandbox { port, sim_port } => {
            let _logs = telemetry::init();
            exit_code(actix_web::rt::System::new().block_on(sandbox::run(port, sim_port)))
        }
    }
}

fn exit_code(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error}");
            ExitCode::FAILURE
        }
    }
}
