/// Many small, short-lived allocations per request (bodies, JSON values, headers): mimalloc's
/// thread-local free lists serve them with less work than the system allocator
/// (bench/RESULTS.md, "Earlier run: one write per message, mimalloc, LTO").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard_server::cli::run()
}
