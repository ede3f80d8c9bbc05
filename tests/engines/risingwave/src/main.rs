//! fletch-rw-check: calls a real fletch server with RisingWave's own UDF client, the `remote` module of the
//! crate arrow-udf-runtime 0.9.0, and checks every answer. See README.md.
//!
//!   fletch-rw-check --fletch bin/fletch [--udf-dir DIR]   start `fletch serve` on a free port, check, stop it
//!   fletch-rw-check --address 127.0.0.1:8815              check a running server (serving udfs/ of this crate)
//!   ... [--only SUBSTRING] [--verbose]

mod checks;
mod cols;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_udf_runtime::remote::Client;
use arrow_udf_runtime::remote::arrow_flight::flight_service_client::FlightServiceClient;

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const CHECK_TIMEOUT: Duration = Duration::from_secs(180);

struct Args {
    fletch: Option<PathBuf>,
    address: Option<String>,
    udf_dir: PathBuf,
    only: Vec<String>,
    verbose: bool,
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("fletch-rw-check: {problem}");
    eprintln!(
        "usage: fletch-rw-check (--fletch PATH [--udf-dir DIR] | --address HOST:PORT) [--only SUBSTRING]... [--verbose]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        fletch: None,
        address: None,
        udf_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("udfs"),
        only: vec![],
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--fletch" => args.fletch = Some(PathBuf::from(value()?)),
            "--address" => args.address = Some(value()?),
            "--udf-dir" => args.udf_dir = PathBuf::from(value()?),
            "--only" => args.only.push(value()?),
            "--verbose" | "-v" => args.verbose = true,
            "--help" | "-h" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.fletch.is_some() == args.address.is_some() {
        return Err("give exactly one of --fletch and --address".into());
    }
    Ok(args)
}

/// A `fletch serve` this program started; stopped (SIGTERM, then SIGKILL) when dropped, its log removed unless
/// `keep_log` was set.
struct Server {
    child: Child,
    log: PathBuf,
    keep_log: bool,
}

impl Server {
    fn start(bin: &PathBuf, udf_dir: &PathBuf) -> Result<(Server, String), String> {
        // A free port: bind port 0, read it back, let it go for fletch.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let address = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("fletch-rw-check-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["serve", "--listen", &address, "--udf-dir"])
            .arg(udf_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        println!(
            "started {} serve --listen {address} --udf-dir {} (pid {}, log {})",
            bin.display(),
            udf_dir.display(),
            child.id(),
            log.display()
        );
        Ok((Server { child, log, keep_log: true }, address))
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("fletch exited ({status})")),
            _ => None,
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if self.keep_log {
            println!("fletch's log: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

impl Server {
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM lets fletch stop its Python workers; SIGKILL if it has not exited after 15 s.
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client made the way RisingWave makes one for a `USING LINK` address (src/expr/impl/src/udf/external.rs:
/// `connect_tonic`, then `Client::new`): the scheme stripped (no TLS), 5 s connect and request timeouts,
/// decoding messages of any size. `Client::new` asks the server for its protocol version. RisingWave's channel
/// is ginepro's DNS-load-balanced one; with one loopback address a plain tonic channel behaves alike.
async fn rw_connect(address: &str) -> Result<Client, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e}"))?;
    let flight = FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    Client::new(flight).await.map_err(|e| format!("Client::new: {e}"))
}

/// Ready = the Flight service answers ListFlights (through RisingWave's client) with every function the checks
/// use, which includes the Python ones once their modules have loaded.
async fn wait_ready(address: &str, mut server: Option<&mut Server>) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::from("no attempt yet");
    while start.elapsed() < READY_TIMEOUT {
        if let Some(s) = server.as_deref_mut()
            && let Some(why) = s.exited()
        {
            return Err(why);
        }
        match rw_connect(address).await {
            Err(e) => last = e,
            Ok(client) => match client.list().await {
                Err(e) => last = format!("ListFlights: {e}"),
                Ok(fs) => {
                    let missing: Vec<&&str> =
                        checks::FUNCTIONS.iter().filter(|n| !fs.iter().any(|f| f.name == **n)).collect();
                    if missing.is_empty() {
                        println!("fletch ready after {:.1} s", start.elapsed().as_secs_f64());
                        return Ok(());
                    }
                    last = format!("ListFlights lacks {missing:?}");
                }
            },
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("fletch not ready after {} s; last attempt: {last}", READY_TIMEOUT.as_secs()))
}

fn one_line(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}...", s.chars().take(max).collect::<String>()) }
}

/// Checks that fail because of fletch bugs not yet fixed, each with the issue that tracks it. A listed check
/// that passes fails the run, so the list cannot go stale.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    (
        "signature/labelled_series-multi-column-table",
        "issue 11: RisingWave expects a multi-column table function's result as one struct column",
    ),
    (
        "table/labelled_series/multi-column-as-struct",
        "issue 11: RisingWave expects a multi-column table function's result as one struct column",
    ),
    (
        "errors/error_column/optional-result/input-split-by-encoder/failure-in-second-half",
        "issue 11: the error column is decided by the first of the IPC batches RisingWave's encoder splits a call into",
    ),
];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e == "help" => return usage("checks fletch with RisingWave's UDF client"),
        Err(e) => return usage(&e),
    };
    let mut server = None;
    let address = match (&args.fletch, &args.address) {
        (Some(bin), _) => match Server::start(bin, &args.udf_dir) {
            Ok((s, addr)) => {
                server = Some(s);
                addr
            }
            Err(e) => {
                eprintln!("fletch-rw-check: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(addr)) => addr.clone(),
        (None, None) => unreachable!(),
    };
    if let Err(e) = wait_ready(&address, server.as_mut()).await {
        eprintln!("fletch-rw-check: {e}");
        if let Some(s) = &server {
            eprintln!("--- last lines of {} ---\n{}", s.log.display(), s.log_tail());
        }
        return ExitCode::FAILURE;
    }

    // One client for every check, as RisingWave caches one per link and shares it across actors.
    let client = match rw_connect(&address).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("fletch-rw-check: connecting to {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("arrow-udf-runtime 0.9.0 remote::Client connected to {address}\n");

    let all = checks::all(client);
    let (mut passed, mut failed, mut known) = (0usize, vec![], 0usize);
    for (name, check) in all.list {
        if !args.only.is_empty() && !args.only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let started = Instant::now();
        // Each check in its own task, so a panic in the client or the decoder is reported as that check's
        // failure; with a timeout, so a hang is one too.
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, tokio::spawn(check)).await;
        let took = started.elapsed().as_secs_f64();
        let v = match outcome {
            Ok(Ok(v)) => v,
            Ok(Err(join)) => checks::Verdict {
                called: "(see the check's name)".into(),
                expected: "an answer or an error".into(),
                got: format!("panic: {join}"),
                failure: Some("the check panicked".into()),
            },
            Err(_) => checks::Verdict {
                called: "(see the check's name)".into(),
                expected: "an answer or an error".into(),
                got: format!("nothing within {} s", CHECK_TIMEOUT.as_secs()),
                failure: Some("timed out".into()),
            },
        };
        let known_bug = KNOWN_FAILURES.iter().find(|(n, _)| *n == name).map(|(_, why)| *why);
        match (&v.failure, known_bug) {
            (None, Some(why)) => {
                println!(
                    "FAIL {name} ({took:.2} s): passes, but is listed as a known failure ({why}); remove it from KNOWN_FAILURES"
                );
                failed.push(name);
            }
            (Some(why), Some(bug)) => {
                known += 1;
                println!("XFAIL {name}: {bug}\n     got:      {} ({why})", one_line(&v.got, 110));
            }
            (None, None) => {
                passed += 1;
                if args.verbose {
                    println!("PASS {name} ({took:.2} s)\n     called:   {}\n     got:      {}", v.called, v.got);
                } else {
                    println!("PASS {name}: {}", one_line(&v.got, 110));
                }
            }
            (Some(why), None) => {
                println!(
                    "FAIL {name} ({took:.2} s): {why}\n     called:   {}\n     expected: {}\n     got:      {}",
                    v.called, v.expected, v.got
                );
                failed.push(name);
            }
        }
    }
    if let Some(mut s) = server.take() {
        if let Some(why) = s.exited() {
            println!("\nFAIL fletch itself: {why} during the checks\n--- last lines of its log ---\n{}", s.log_tail());
            failed.push("server-alive".into());
        }
        s.keep_log = !failed.is_empty();
        drop(s); // stops fletch before the summary, so the summary is the last line
    }
    println!();
    if !failed.is_empty() {
        println!("failed checks:");
        for f in &failed {
            println!("  {f}");
        }
    }
    println!("risingwave: {passed} passed, {} failed, {known} known failures (KNOWN_FAILURES)", failed.len());
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
