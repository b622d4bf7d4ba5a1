// Each call allocates a few dozen short-lived buffers across the runtime's worker threads:
// mimalloc's per-thread heaps take about half the instructions of glibc's malloc for them, and
// no arena lock (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcpgate::cli::main()
}
