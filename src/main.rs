//! The `kapi` command: the Kubernetes API server (no subcommand), and the `decode` and
//! `encode` tools that read and write objects in the forms etcd stores.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kapi::{convert, serve};

/// mimalloc: the cache's churn of object versions (kilobytes each, freed on other threads than
/// the one that made them) fragments glibc's per-thread arenas; RSS stays closer to what is live.
/// Built without transparent huge pages (`no_thp`): with them, every page mimalloc purged and
/// took back was a 2 MiB fault to zero — on a pod create load, 10 % of the server's CPU, twice
/// the p99 and 40 % more RSS (loadtest/ab.sh, the same binary with and without).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kapi",
    version,
    about = "A Kubernetes API server built around its watch cache",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Read an object as etcd stores it (protobuf with the k8s\0 envelope, or JSON), or as
    /// JSON, YAML or protobuf, and write it as JSON (default), YAML or protobuf.
    Decode(convert::ConvertArgs),
    /// Read an object as JSON, YAML or protobuf and write the form etcd stores: protobuf with
    /// the k8s\0 envelope (default), or `--to json|yaml`.
    Encode(convert::ConvertArgs),
}

fn main() {
    // Every other upstream flag is accepted with a warning naming it (`kapi::flags`).
    let matches = kapi::flags::add_compat(Cli::command()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.command.is_none() {
        for warning in kapi::flags::compat_warnings(&matches) {
            eprintln!("kapi: warning: {warning}");
        }
    }
    let result = match &cli.command {
        Some(Command::Decode(args)) => convert::run(args, convert::Format::Json),
        Some(Command::Encode(args)) => convert::run(args, convert::Format::Pb),
        None => serve::run(&cli.serve),
    };
    if let Err(e) = result {
        eprintln!("kapi: error: {e}");
        std::process::exit(1);
    }
}
