//! Ganeti's own Python LUXI client against our masterd (skips when
//! Debian's ganeti-3.0 is not installed).

use crate::harness::TestCluster;
use std::path::Path;
use std::time::Duration;

const GANETI_PY: &str = "/usr/share/ganeti/3.0";

#[test]
fn ganeti_python_client_queries_and_runs_jobs() {
    if !Path::new(GANETI_PY).join("ganeti/luxi.py").exists()
        || !Path::new("/usr/bin/python3").exists()
    {
        eprintln!(
            "skipping: Ganeti's Python library is not installed (apt-get install ganeti-3.0)"
        );
        return;
    }
    let c = TestCluster::new(1);
    c.init(&[]).ok();
    c.wait_for("masterd", Duration::from_secs(10), || {
        c.daemon_pid("node1", "ganeti-masterd").is_some()
    });
    let sock = c.path("node1", "/var/run/ganeti/socket/ganeti-query");
    let script = format!(
        "import sys, json\nsys.path.insert(0, {GANETI_PY:?})\nfrom ganeti import luxi, errors\n\
         c = luxi.Client(address={sock:?})\n\
         info = c.QueryClusterInfo()\n\
         print(json.dumps([info['name'], info['master'], info['config_version'], c.QueryConfigValues(['cluster_name', 'master_node'])]))\n\
         from ganeti import opcodes, constants\n\
         jid = c.SubmitJob([opcodes.OpTestDelay(duration=0.01, repeat=2)])\n\
         info, serial, logs = None, None, []\n\
         while True:\n\
         \x20   r = c.WaitForJobChangeOnce(jid, ['status'], info, serial)\n\
         \x20   if r == constants.JOB_NOTCHANGED: continue\n\
         \x20   info, entries = r\n\
         \x20   for e in entries: serial = e[0]; logs.append(e[3])\n\
         \x20   if info[0] in ('success', 'error'): break\n\
         print(json.dumps([c.QueryJobs([jid], ['status', 'opresult']), logs]))\n\
         try:\n    c.SubmitJob([])\nexcept errors.OpPrereqError as e:\n    print('OpPrereqError', e)\n"
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!(["cluster.test", "node1", 3000000, ["cluster.test", "node1"]])
    );
    let second: serde_json::Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        second[0],
        serde_json::json!([["success", [true]]]),
        "{stdout}"
    );
    assert_eq!(
        second[1],
        serde_json::json!(["Test delay iteration 0/1", "Test delay iteration 1/1"]),
        "{stdout}"
    );
    assert!(
        stdout.contains("OpPrereqError") && stdout.contains("at least one opcode"),
        "{stdout}"
    );
}
