//! loadgen: the load generator and measuring tool behind `bench/run`.
//!
//! Every subcommand prints one JSON object on stdout (its measurement) and
//! exits 0, or prints an error on stderr and exits 1. Errors of individual
//! requests are counted and reported in the JSON (`errors`), never hidden;
//! `bench/run` fails a figure that has any.

mod args;
mod blob;
mod flood;
mod layout;
mod limits;
mod load;
mod net;
mod rawhttp;
mod report;
mod setup;
mod soak;
mod stats;
mod util;

use args::Args;

const USAGE: &str = "usage: loadgen COMMAND [--key value ...]
  ports     --n N                                   free 127.0.0.1 ports
  wait      --addr A [--path P] [--secs S]          until the server answers
  hash      --size BYTES [--seed S]                 sha256 throughput (sha2 crate)
  dd        --dir D --mib N [--idle S]              sync + idle, dd bs=16M conv=fsync
  fsync     --dir D [--threads 16] [--secs S] [--idle 1]  create+write 16 KiB+fsync+rename rate
  layout    --dir D [--threads 16] [--secs S] [--idle 1]  small images' layout (dirs, files, 4 fsyncs) rate
  push      --addr A --repo R --size BYTES --mode mono|chunked [--chunk BYTES]
            [--idle-dir D] [--idle S] [--pid P]...  one blob push, timed
  pull      --addr A --path P --count K [--verify sha256:..] [--pid P]...
  hammer    --addr A --path P [--method HEAD|GET] [--conns 64] [--threads 2] [--secs S]
            [--header 'K: V']... [--pid P]...       keep-alive request loop
  wrk       --addr A --path P [--conns 64] [--threads 2] [--secs S] [--header 'K: V']
            [--pid P]...                            runs wrk, parses its output
  seed      --addr A --repo R --tag T --out FILE    pushes one small image, writes manifest
  storm     --addr A --prefix P [--clients 16] [--images 50] [--idle-dir D] [--idle 1] [--pid P]...
  populate-tags  --addr A --repo R --manifest FILE --count N [--conns 16]
  populate-repos --addr A --from R --manifest FILE --count N [--conns 16]
  list      --addr A --path P --key K [--follow 1] [--reps N]
  rss       --pid P                                 VmRSS / VmHWM in MiB
  soak      --addr A --pid P [--clients 64] [--secs 600] [--sample 5] [--settle 15] [--repos 16]
            mixed pushes/pulls/HEADs/listings/deletes; RSS and fds over time
  flood     --addr A [--pulls 200] [--rounds 3] [--hogs 4] [--extra 8] [--blob BYTES] [--patch BYTES]
            [--flooder 127.0.0.1] [--puller 127.0.0.2]  pull latency quiet vs one address flooding uploads
  report    --raw FILE.jsonl --out FILE.json [--label L]";

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(cmd) = argv.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let args = match Args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen {cmd}: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let result = match cmd.as_str() {
        "ports" => setup::ports(&args),
        "wait" => setup::wait(&args),
        "hash" => limits::hash(&args),
        "dd" => limits::dd(&args),
        "fsync" => limits::fsync(&args),
        "layout" => layout::layout(&args),
        "push" => blob::push(&args),
        "pull" => blob::pull(&args),
        "hammer" => load::hammer(&args),
        "wrk" => load::wrk(&args),
        "seed" => setup::seed(&args),
        "storm" => load::storm(&args),
        "populate-tags" => setup::populate_tags(&args),
        "populate-repos" => setup::populate_repos(&args),
        "list" => setup::list(&args),
        "rss" => limits::rss(&args),
        "soak" => soak::soak(&args),
        "flood" => flood::flood(&args),
        "report" => report::report(&args),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return;
        }
        other => Err(format!("unknown command {other}")),
    };
    match result {
        Ok(value) => println!("{value}"),
        Err(e) => {
            // On stdout too, as JSON, so bench/run records why a figure failed.
            println!("{}", serde_json::json!({ "failed": format!("{cmd}: {e}") }));
            eprintln!("loadgen {cmd}: {e}");
            std::process::exit(1);
        }
    }
}
