//! The gateway against its OpenAPI description (`docs/openapi.json`, served at
//! `/openapi.json`): `openapi-spec-validator` accepts the document, and `schemathesis` (from
//! PyPI, in the venv tests/setup.sh makes) generates requests for every route against a live
//! daemon over real TLS, with the password and without it. Every response must match the
//! document (status, content type, headers, body schema), none may be a 5xx, schema-violating
//! requests must be refused, and a route that needs the password must refuse a request
//! without it.
//!
//! Every check runs (`tests/it/schemathesis.toml`) but two, on purpose: schemathesis's `use_after_free` expects a DELETEd resource to be
//! gone, but `DELETE /jobs/ID` cancels the job (Brocapi's and pcapd's meaning): the record
//! stays, in state `cancelled`. And on `POST /submit/pcap` only, `negative_data_rejection`
//! (`tests/it/schemathesis.toml` says why).

use std::path::PathBuf;
use std::process::Command;

use crate::gateway::gateway_spec;
use crate::harness::TestDaemon;

/// Generated cases per operation and phase; with the coverage phase's own cases and the
/// stateful phase's, each route gets a few hundred requests per run.
const EXAMPLES: &str = "200";

fn venv_tool(name: &str) -> PathBuf {
    let env_dir = std::env::var_os("PCAPD_TEST_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-env"));
    let tool = env_dir.join("api-venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run tests/setup.sh (it makes the api-venv with schemathesis and \
         openapi-spec-validator)",
        tool.display()
    );
    tool
}

#[test]
fn the_openapi_document_is_valid() {
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let output = Command::new(venv_tool("openapi-spec-validator"))
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs schemathesis against `daemon`'s gateway; returns its report on failure.
fn schemathesis(daemon: &TestDaemon, name: &str, extra: &[&str]) {
    let port = daemon.http_port.expect("the daemon has [Http]");
    let base = format!("https://127.0.0.1:{port}");
    let report_dir = daemon.dir.join(format!("schemathesis-{name}"));
    let output = Command::new(venv_tool("schemathesis"))
        .arg("--config-file")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/schemathesis.toml"))
        .args(["run", &format!("{base}/openapi.json"), "--url", &base])
        .arg("--tls-verify")
        .arg(&daemon.cert)
        .args(["--max-examples", EXAMPLES, "--seed", "7"])
        .args(["--continue-on-failure", "--no-color"])
        .arg("--report-dir")
        .arg(&report_dir)
        .args(extra)
        .env("SCHEMATHESIS_HOOKS", "")
        // Its example cache goes in the test's directory, not the checkout.
        .current_dir(&daemon.dir)
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("schemathesis ({name}):\n{report}");
    assert!(
        output.status.success(),
        "schemathesis ({name}) found failures:\n{report}\n{}\ndaemon stderr:\n{}",
        String::from_utf8_lossy(&output.stderr),
        daemon.stderr()
    );
    // It really ran: cases generated for every operation, none of them skipped wholesale.
    assert!(report.contains("Tested: 11"), "{report}");
}

#[test]
fn schemathesis_finds_the_gateway_as_its_document_says() {
    // No delay after a wrong password: schemathesis sends many on purpose.
    let mut spec = gateway_spec("");
    spec.extra_global = "auth_delay = 0\n".into();
    let daemon = TestDaemon::start("openapi-st", &spec);
    let bearer = format!("Authorization: Bearer {}", daemon.password);
    schemathesis(&daemon, "authenticated", &["--header", &bearer]);
    schemathesis(&daemon, "without-password", &[]);
    // The daemon took all of it and still answers.
    let health = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&daemon.cert)
        .arg(format!(
            "https://127.0.0.1:{}/healthz",
            daemon.http_port.unwrap()
        ))
        .output()
        .unwrap();
    assert!(health.status.success());
}
