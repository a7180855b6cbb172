//! A whole store on object storage, as users run it: `mcpops --store
//! s3://BUCKET/PREFIX --s3-endpoint URL ...` against a real moto_server on
//! 127.0.0.1 (see `object_storage.rs`; without moto_server the tests say
//! SKIP and pass), compared with the same commands on a local directory;
//! and the library's optimistic writers racing on one store.

use crate::common::text;
use crate::object_storage::Moto;
use bytes::Bytes;
use mcpops::model::{SampleSink, SeriesKey};
use mcpops::store::{MANIFESTS_DIR, ScanRequest, Store, StoreError};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUCKET: &str = "mcpops-store";

/// The shipped sample fleet.
fn fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fleet")
}

/// `mcpops --store STORE --quiet ARGS...`, with the S3 endpoint and
/// credentials of the test's server and nothing from the machine's AWS
/// set-up.
fn mcpops_at(store: &str, moto: &Moto, key: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    s3_command(store, &moto.endpoint(), key)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run mcpops")
}

/// `mcpops --store STORE --s3-endpoint ENDPOINT --quiet`, with access key
/// `key` and nothing from the machine's AWS set-up.
fn s3_command(store: &str, endpoint: &str, key: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpops"));
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "MCPOPS_STORE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "mcpops-secret")
        .env("AWS_REGION", "us-east-1")
        .args(["--store", store, "--s3-endpoint", endpoint, "--quiet"]);
    cmd
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `info --format json` without the fields that name where the store is.
fn info(store: &str, moto: &Moto) -> serde_json::Value {
    let out = ok(
        &mcpops_at(store, moto, "k", &[], &["info", "--format", "json"]),
        "info",
    );
    let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_object_mut().unwrap().remove("store");
    v
}

#[test]
fn a_store_on_s3_answers_as_the_same_data_in_a_directory_does() {
    let Some(moto) = Moto::start("store_on_s3 same answers") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local").display().to_string();
    let remote = format!("s3://{BUCKET}/fleet/a");
    let fleet = fleet().display().to_string();
    for store in [&local, &remote] {
        ok(
            &mcpops_at(store, &moto, "k", &[], &["ingest", &fleet]),
            "ingest",
        );
    }
    let same = |args: &[&str]| {
        let here = ok(&mcpops_at(&local, &moto, "k", &[], args), "local");
        let there = ok(&mcpops_at(&remote, &moto, "k", &[], args), "s3");
        assert!(!here.is_empty(), "{args:?} printed nothing");
        assert!(here == there, "{args:?} differs between a directory and S3");
    };
    same(&["export", "--format", "csv"]);
    same(&[
        "export",
        "--format",
        "jsonl",
        "--metric",
        "mcp.server.operation.duration",
    ]);
    same(&[
        "query",
        "p95(mcp.server.operation.duration[5m]) by (server)",
        "--format",
        "csv",
    ]);
    same(&["metrics"]);
    same(&["labels"]);
    assert_eq!(info(&local, &moto), info(&remote, &moto));
    // The objects are where the layout says: segments as on disk, one
    // manifest per commit.
    let storage = moto.storage(BUCKET, "fleet/a");
    let keys: Vec<String> = storage
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        keys.iter()
            .any(|k| k == &format!("{MANIFESTS_DIR}/00000000000000000001.json")),
        "{keys:?}"
    );
    let segments = keys
        .iter()
        .filter(|k| k.starts_with("segments/day="))
        .count();
    assert_eq!(
        segments as u64,
        info(&remote, &moto)["segments"].as_u64().unwrap(),
        "{keys:?}"
    );
    // Every segment reads in full against its checksums.
    ok(&mcpops_at(&remote, &moto, "k", &[], &["verify"]), "verify");

    // A second ingest of the same files, then a compaction: both stores
    // still answer alike (the compaction's merged segments replace the
    // duplicates in one commit).
    for store in [&local, &remote] {
        ok(
            &mcpops_at(store, &moto, "k", &[], &["ingest", &fleet]),
            "ingest again",
        );
        ok(&mcpops_at(store, &moto, "k", &[], &["compact"]), "compact");
    }
    same(&["export", "--format", "csv"]);
    assert_eq!(info(&local, &moto), info(&remote, &moto));
    assert_eq!(info(&remote, &moto)["duplicates"], 0);
}

#[test]
fn wrong_credentials_exit_2_in_the_server_s_words_and_write_nothing() {
    let Some(moto) = Moto::start("store_on_s3 wrong credentials") else {
        return;
    };
    moto.create_bucket(BUCKET);
    moto.require_auth();
    let store = format!("s3://{BUCKET}/refused");
    let fleet = fleet().display().to_string();
    let o = mcpops_at(&store, &moto, "no-such-key", &[], &["ingest", &fleet]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("InvalidAccessKeyId"), "{said}");
    assert!(said.contains(&store), "{said}");
    // A wrong endpoint is the user's set-up too.
    let closed = crate::common::free_port();
    let o = s3_command(&store, &format!("http://127.0.0.1:{closed}"), "k")
        .arg("info")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    moto.reset_auth(1000);
    let left = moto.storage(BUCKET, "").list("").unwrap();
    assert!(left.is_empty(), "a refused ingest wrote {left:?}");
}

/// A sink's worth of samples of one series on 2026-01-05.
fn write(store: &Store, name: &str, value: f64) -> Result<mcpops::store::StoreWriter, StoreError> {
    let mut w = store.writer()?;
    let key = SeriesKey::new(name, vec![("server".into(), "a".into())]);
    let id = w.intern(key);
    for i in 0..10 {
        w.push(id, 1_767_571_200_000 + i * 60_000, value).unwrap();
    }
    Ok(w)
}

fn values(store: &Store, name: &str) -> Vec<f64> {
    let series = store
        .snapshot()
        .unwrap()
        .scan(&ScanRequest {
            metric: Some(name.to_string()),
            ..ScanRequest::all()
        })
        .unwrap();
    series.into_iter().flat_map(|s| s.values).collect()
}

#[test]
fn two_writers_of_one_snapshot_both_commit_and_a_conflicting_rewrite_is_refused() {
    let Some(moto) = Moto::start("store_on_s3 two writers") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let store = Store::on_object_storage(moto.storage(BUCKET, "race"));
    // Both read generation 0 and take segment id 0; the second upload
    // finds the first's object and takes id 1, and its manifest create
    // finds generation 1 taken (412) and rebases onto it.
    let first = write(&store, "x", 1.0).unwrap();
    let second = write(&store, "y", 2.0).unwrap();
    let a = first.commit().unwrap();
    let b = second.commit().unwrap();
    assert_eq!((a.generation, b.generation), (1, 2));
    assert_eq!(values(&store, "x"), vec![1.0; 10]);
    assert_eq!(values(&store, "y"), vec![2.0; 10]);
    let manifest = store.snapshot().unwrap().manifest().clone();
    let ids: Vec<u64> = manifest.segments.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![0, 1]);

    // A later write of the same samples wins, whichever id it holds.
    let newer = write(&store, "x", 3.0).unwrap();
    let compaction = store.clone();
    // A compaction from the snapshot before `newer` committed...
    let mut compactor = compaction.writer().unwrap();
    newer.commit().unwrap();
    assert_eq!(values(&store, "x"), vec![3.0; 10]);
    // ...would rewrite x's older samples above the newer ones: refused.
    let key = SeriesKey::new("x", vec![("server".into(), "a".into())]);
    let id = compactor.intern(key);
    for i in 0..10 {
        compactor
            .push(id, 1_767_571_200_000 + i * 60_000, 1.0)
            .unwrap();
    }
    compactor.remove_segment(0);
    let refused = compactor.commit().unwrap_err();
    assert!(
        matches!(refused, StoreError::Conflict { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("run it again"), "{refused}");
    // Nothing of the refused commit is visible, and its upload is gone.
    assert_eq!(values(&store, "x"), vec![3.0; 10]);
    assert_eq!(values(&store, "y"), vec![2.0; 10]);
    let storage = moto.storage(BUCKET, "race");
    let segments = storage
        .list("segments")
        .unwrap()
        .into_iter()
        .filter(|o| o.key.ends_with(".parquet"))
        .count();
    assert_eq!(segments, 3, "the refused compaction's segment was left");
}

#[test]
fn objects_no_manifest_names_are_ignored_and_swept_only_after_the_grace_period() {
    let Some(moto) = Moto::start("store_on_s3 orphans") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let store = format!("s3://{BUCKET}/orphans");
    let fleet = fleet().display().to_string();
    // Twice, so that a compaction has duplicates to remove.
    for _ in 0..2 {
        ok(
            &mcpops_at(&store, &moto, "k", &[], &["ingest", &fleet]),
            "ingest",
        );
    }
    let before = info(&store, &moto);
    // What a writer killed (kill -9) between its uploads and its commit
    // leaves: a segment object no manifest names.
    let storage = moto.storage(BUCKET, "orphans");
    let orphan = "segments/day=2026-11-16/seg-0000099999.parquet";
    storage
        .put_create(orphan, Bytes::from_static(b"PAR1 half an upload"))
        .unwrap();
    assert_eq!(info(&store, &moto), before, "a reader saw the orphan");
    ok(&mcpops_at(&store, &moto, "k", &[], &["verify"]), "verify");
    let segment_objects = || {
        storage
            .list("segments")
            .unwrap()
            .into_iter()
            .filter(|o| o.key.ends_with(".parquet"))
            .count() as u64
    };
    // A writer within the grace period keeps it (the killed writer's
    // commit could still have been on its way), and keeps the segments its
    // compaction replaced: a reader holding the snapshot before it still
    // finds every file that snapshot names.
    let keep = [("MCPOPS_S3_GRACE_SECS", "3600")];
    ok(
        &mcpops_at(&store, &moto, "k", &keep, &["compact"]),
        "compact",
    );
    assert!(storage.head(orphan).unwrap().is_some());
    let compacted = info(&store, &moto);
    assert_eq!(compacted["duplicates"], 0);
    let listed = compacted["segments"].as_u64().unwrap();
    assert_eq!(
        segment_objects(),
        before["segments"].as_u64().unwrap() + listed + 1
    );
    assert_eq!(storage.list(MANIFESTS_DIR).unwrap().len(), 3);
    // Past the grace period the next writer removes the orphan, the
    // replaced segments and the old manifests; the store reads the same.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let swept = [("MCPOPS_S3_GRACE_SECS", "1")];
    ok(
        &mcpops_at(&store, &moto, "k", &swept, &["compact"]),
        "compact",
    );
    assert!(storage.head(orphan).unwrap().is_none(), "the orphan stayed");
    assert_eq!(info(&store, &moto), compacted);
    assert_eq!(segment_objects(), listed);
    assert_eq!(storage.list(MANIFESTS_DIR).unwrap().len(), 1);
}

/// What independent readers make of the store's objects: delta-rs
/// (`deltalake`) of the Delta table, pyarrow and polars of the `day=`
/// partitioned segments; rows, the sum of `value`, and per distinct value
/// of `region` (null included) the rows that carry it.
const READERS: &str = r#"
import json, sys
import pyarrow.compute as pc
import pyarrow.dataset as ds
import polars as pl
from deltalake import DeltaTable
from pyarrow import fs

endpoint, bucket, prefix = sys.argv[1:4]
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
def summary(table):
    regions = {}
    if "region" in table.column_names:
        for r in table.column("region").to_pylist():
            regions[str(r)] = regions.get(str(r), 0) + 1
    return {"rows": table.num_rows, "sum": pc.sum(table.column("value")).as_py(), "regions": regions}
dt = DeltaTable(f"s3://{bucket}/{prefix}", storage_options=opts)
out = {"delta": summary(dt.to_pyarrow_table()), "delta_version": dt.version(),
       "delta_partitions": dt.metadata().partition_columns}
s3 = fs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key="k", secret_key="s", region="us-east-1")
files = [f.path for f in s3.get_file_info(fs.FileSelector(f"{bucket}/{prefix}/segments", recursive=True))
         if f.path.endswith(".parquet") and f.path.split("/")[-1].split(".")[0] in set(sys.argv[4].split(","))]
pa_table = ds.dataset(files, filesystem=s3, format="parquet", partitioning="hive",
                      partition_base_dir=f"{bucket}/{prefix}/segments").to_table()
out["pyarrow"] = summary(pa_table)
pl_opts = {"aws_endpoint_url": endpoint, "aws_access_key_id": "k", "aws_secret_access_key": "s",
           "aws_region": "us-east-1", "aws_allow_http": "true"}
lf = pl.scan_parquet([f"s3://{p}" for p in files], storage_options=pl_opts, hive_partitioning=True,
                     missing_columns="insert", extra_columns="ignore")
df = lf.collect()
out["polars"] = {"rows": df.height, "sum": df["value"].sum()}
out["polars_delta"] = summary(pl.read_delta(f"s3://{bucket}/{prefix}", storage_options=opts).to_arrow())
print(json.dumps(out), flush=True)
# delta-rs's runtime may abort at interpreter exit: leave without the
# interpreter's shutdown.
import os; os._exit(0)
"#;

#[test]
fn delta_rs_pyarrow_and_polars_read_the_store_on_s3_as_mcpops_does() {
    let Some(moto) = Moto::start("store_on_s3 delta") else {
        return;
    };
    if !crate::common::python_has("deltalake,pyarrow,polars", "store_on_s3 delta") {
        return;
    }
    moto.create_bucket(BUCKET);
    let store = format!("s3://{BUCKET}/delta");
    let fleet = fleet().display().to_string();
    ok(
        &mcpops_at(&store, &moto, "k", &[], &["ingest", &fleet]),
        "ingest",
    );
    // A second commit brings a label column the first one's files lack,
    // then a compaction replaces files (remove plus add in the log).
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("regions.csv");
    std::fs::write(
        &csv,
        "timestamp,metric,server,region,value\n\
         2026-11-16T00:00:00Z,mcp.extra,a,eu,1.5\n\
         2026-11-16T00:01:00Z,mcp.extra,a,eu,2.5\n\
         2026-11-16T00:02:00Z,mcp.extra,b,us,4\n",
    )
    .unwrap();
    ok(
        &mcpops_at(&store, &moto, "k", &[], &["ingest", csv.to_str().unwrap()]),
        "ingest regions",
    );
    ok(&mcpops_at(&store, &moto, "k", &[], &["compact"]), "compact");
    let info = info(&store, &moto);
    let rows = info["samples"].as_u64().unwrap();
    let exported = ok(
        &mcpops_at(&store, &moto, "k", &[], &["export", "--format", "jsonl"]),
        "export",
    );
    let sum: f64 = exported
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["value"].as_f64().unwrap()
        })
        .sum();
    let listed: Vec<String> = Store::on_object_storage(moto.storage(BUCKET, "delta"))
        .snapshot()
        .unwrap()
        .manifest()
        .segments
        .iter()
        .map(|s| format!("seg-{:010}", s.id))
        .collect();
    let out = Command::new("python3")
        .args([
            "-c",
            READERS,
            &moto.endpoint(),
            BUCKET,
            "delta",
            &listed.join(","),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("readers: {got}");
    for reader in ["delta", "pyarrow", "polars"] {
        assert_eq!(got[reader]["rows"].as_u64(), Some(rows), "{reader}: {got}");
        let theirs = got[reader]["sum"].as_f64().unwrap();
        assert!(
            (theirs - sum).abs() <= 1e-9 * sum.abs().max(1.0),
            "{reader}: sum {theirs} vs mcpops {sum}"
        );
    }
    // Rows of files without the column read as null for it, in every
    // reader that reads the column.
    for reader in ["delta", "pyarrow", "polars_delta"] {
        let regions = &got[reader]["regions"];
        assert_eq!(regions["eu"], 2, "{reader}: {got}");
        assert_eq!(regions["us"], 1, "{reader}: {got}");
        assert_eq!(regions["None"].as_u64(), Some(rows - 3), "{reader}: {got}");
    }
    assert_eq!(got["polars_delta"]["rows"].as_u64(), Some(rows), "{got}");
    assert_eq!(got["delta_partitions"], serde_json::json!(["day"]));
    // Three commits, three versions.
    assert_eq!(got["delta_version"], 2, "{got}");
}

/// `sync --format json`'s summary.
fn sync(moto: &Moto, from: &str, to: &str) -> serde_json::Value {
    let out = ok(
        &mcpops_at(
            from,
            moto,
            "k",
            &[],
            &["sync", from, to, "--format", "json"],
        ),
        "sync",
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_local_store_pushed_to_s3_and_pulled_back_reads_the_same_and_copies_only_what_is_new() {
    let Some(moto) = Moto::start("store_on_s3 sync") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local").display().to_string();
    let back = dir.path().join("back").display().to_string();
    let remote = format!("s3://{BUCKET}/pushed");
    let fleet = fleet().display().to_string();
    ok(
        &mcpops_at(&local, &moto, "k", &[], &["ingest", &fleet]),
        "ingest",
    );
    let first = sync(&moto, &local, &remote);
    let segments = first["segments"].as_u64().unwrap();
    assert!(segments > 0, "{first}");
    assert_eq!(first["copied"].as_u64(), Some(segments), "{first}");
    // New samples locally: the next push copies only their segments.
    let csv = dir.path().join("more.csv");
    std::fs::write(
        &csv,
        "timestamp,metric,server,value\n2026-11-20T00:00:00Z,mcp.extra,a,1\n",
    )
    .unwrap();
    ok(
        &mcpops_at(&local, &moto, "k", &[], &["ingest", csv.to_str().unwrap()]),
        "ingest more",
    );
    let second = sync(&moto, &local, &remote);
    assert_eq!(second["copied"], 1, "{second}");
    assert_eq!(second["kept"].as_u64(), Some(segments), "{second}");
    assert_eq!(second["removed"], 0, "{second}");
    // Nothing new: nothing copied, no commit.
    let third = sync(&moto, &local, &remote);
    assert_eq!(third["copied"], 0, "{third}");
    assert_eq!(third["generation"], second["generation"], "{third}");
    // Pulled back into a new directory, every command reads the same.
    sync(&moto, &remote, &back);
    for args in [
        &["export", "--format", "csv"][..],
        &[
            "query",
            "count(mcp.server.operation.duration[1h]) by (server)",
            "--format",
            "csv",
        ],
        &["metrics"],
    ] {
        let here = ok(&mcpops_at(&local, &moto, "k", &[], args), "local");
        let there = ok(&mcpops_at(&remote, &moto, "k", &[], args), "s3");
        let pulled = ok(&mcpops_at(&back, &moto, "k", &[], args), "pulled");
        assert!(here == there && here == pulled, "{args:?} differs");
    }
    ok(&mcpops_at(&back, &moto, "k", &[], &["verify"]), "verify");
    // A source that holds nothing (a mistyped prefix) never empties the
    // destination.
    let o = mcpops_at(
        &remote,
        &moto,
        "k",
        &[],
        &["sync", &format!("s3://{BUCKET}/typo"), &back],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("nothing was ever committed under this prefix"),
        "{}",
        text(&o)
    );
}

#[test]
fn shards_written_at_once_read_as_one_store_and_as_one_delta_table() {
    let Some(moto) = Moto::start("store_on_s3 shards") else {
        return;
    };
    if !crate::common::python_has("deltalake,pyarrow,polars", "store_on_s3 shards") {
        return;
    }
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("s3://{BUCKET}/sites");
    // Two sites ingest at the same moment, each into its own shard.
    let mut runs = Vec::new();
    for site in ["east", "west"] {
        let csv = dir.path().join(format!("{site}.csv"));
        let mut text = String::from("timestamp,metric,site,value\n");
        for i in 0..100 {
            text.push_str(&format!(
                "2026-11-16T00:{:02}:{:02}Z,mcp.up,{site},{i}\n",
                i / 60,
                i % 60
            ));
        }
        std::fs::write(&csv, text).unwrap();
        let mut cmd = s3_command(&store, &moto.endpoint(), "k");
        cmd.args(["--shard", site, "ingest"]).arg(&csv);
        runs.push(cmd.spawn().unwrap());
    }
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    // The store reads both shards; a shard reads itself.
    let all = info(&store, &moto);
    assert_eq!(all["samples"], 200, "{all}");
    assert_eq!(all["series"], 2, "{all}");
    let east = ok(
        &mcpops_at(&store, &moto, "k", &[], &["--shard", "east", "export"]),
        "export east",
    );
    assert_eq!(east.lines().count(), 101, "{east}");
    assert!(!east.contains("west"), "{east}");
    let sums = ok(
        &mcpops_at(
            &store,
            &moto,
            "k",
            &[],
            &[
                "query",
                "count(mcp.up[1h]) by (site)",
                "--at",
                "2026-11-16T00:59:00Z",
                "--format",
                "csv",
            ],
        ),
        "query",
    );
    assert!(sums.contains("east") && sums.contains("west"), "{sums}");
    // One Delta table holds both shards' files.
    let script = r#"
import json, sys
from deltalake import DeltaTable
opts = {"AWS_ENDPOINT_URL": sys.argv[1], "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
t = DeltaTable(sys.argv[2], storage_options=opts).to_pyarrow_table()
print(json.dumps({"rows": t.num_rows, "sites": sorted(set(t.column("site").to_pylist()))}), flush=True)
# delta-rs's runtime may abort at interpreter exit ("terminate called without
# an active exception"): leave without the interpreter's shutdown.
import os; os._exit(0)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &moto.endpoint(), &store])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["rows"], 200, "{got}");
    assert_eq!(got["sites"], serde_json::json!(["east", "west"]), "{got}");
    // A compaction of one shard leaves the other's files in the table.
    ok(
        &mcpops_at(
            &store,
            &moto,
            "k",
            &[],
            &[
                "--shard",
                "west",
                "ingest",
                dir.path().join("west.csv").to_str().unwrap(),
            ],
        ),
        "ingest west again",
    );
    ok(
        &mcpops_at(&store, &moto, "k", &[], &["--shard", "west", "compact"]),
        "compact west",
    );
    let out = Command::new("python3")
        .args(["-c", script, &moto.endpoint(), &store])
        .output()
        .unwrap();
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["rows"], 200, "{got}");
    assert_eq!(info(&store, &moto)["samples"], 200);
    // Shards are for object storage.
    let o = mcpops_at(
        dir.path().join("local").to_str().unwrap(),
        &moto,
        "k",
        &[],
        &["--shard", "east", "info"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_writer_killed_mid_upload_leaves_no_partial_commit_and_its_sweep_spares_a_held_snapshot() {
    let Some(moto) = Moto::start("store_on_s3 kill -9") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let store = format!("s3://{BUCKET}/killed");
    let fleet = fleet().display().to_string();
    let prom = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/fleet-prom")
        .display()
        .to_string();
    ok(
        &mcpops_at(&store, &moto, "k", &[], &["ingest", &fleet]),
        "ingest",
    );
    let before = info(&store, &moto);
    // A reader's snapshot, held across what follows.
    let reader = Store::on_object_storage(moto.storage(BUCKET, "killed"));
    let held = reader.snapshot().unwrap();
    let held_rows: usize = held
        .scan(&ScanRequest::all())
        .unwrap()
        .iter()
        .map(|s| s.timestamps.len())
        .sum();
    let storage = moto.storage(BUCKET, "killed");
    let parquet = || {
        storage
            .list("segments")
            .unwrap()
            .into_iter()
            .filter(|o| o.key.ends_with(".parquet"))
            .count()
    };
    let committed = parquet();
    // A second writer, killed (SIGKILL) once its first segment is up and
    // before its manifest: many days of data give it many uploads.
    let mut writer = s3_command(&store, &moto.endpoint(), "k")
        .args(["ingest", &prom, &fleet])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while parquet() == committed {
        assert!(
            writer.try_wait().unwrap().is_none(),
            "the writer finished before it was killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no upload within 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let orphans = parquet() - committed;
    assert!(orphans > 0);
    assert_eq!(
        storage.list(MANIFESTS_DIR).unwrap().len(),
        1,
        "the killed writer committed"
    );
    // No reader lists what it uploaded.
    assert_eq!(info(&store, &moto), before);
    // The next writer, past the grace period, sweeps the orphans and
    // nothing the held snapshot reads.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let csv = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(
        csv.path(),
        "timestamp,metric,server,value\n2026-11-20T00:00:00Z,mcp.extra,a,1\n",
    )
    .unwrap();
    let swept = [("MCPOPS_S3_GRACE_SECS", "1")];
    ok(
        &mcpops_at(
            &store,
            &moto,
            "k",
            &swept,
            &["ingest", csv.path().to_str().unwrap()],
        ),
        "next writer",
    );
    assert_eq!(parquet(), committed + 1, "orphans left behind");
    let again: usize = held
        .scan(&ScanRequest::all())
        .unwrap()
        .iter()
        .map(|s| s.timestamps.len())
        .sum();
    assert_eq!(again, held_rows);
}

#[test]
fn a_live_store_mirrors_each_flush_to_a_shard_on_s3_and_counts_a_mirror_it_cannot_reach() {
    let Some(moto) = Moto::start("store_on_s3 live mirror") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let mirror = Store::on_object_storage(moto.storage(BUCKET, "mirrored"))
        .shard("watch-1")
        .unwrap();
    let options = mcpops::store::LiveOptions {
        flush_samples: usize::MAX,
        flush_interval: std::time::Duration::from_secs(3600),
        mirror: Some(mirror.clone()),
    };
    let live = mcpops::store::LiveStore::open(dir.path(), options).unwrap();
    let mut batch = mcpops::model::MemorySink::default();
    let id = batch.intern(SeriesKey::new("up", vec![("job".into(), "a".into())]));
    for i in 0..50 {
        batch
            .push(id, 1_767_571_200_000 + i * 15_000, i as f64)
            .unwrap();
    }
    live.append(&batch).unwrap();
    live.flush().unwrap();
    let stats = live.stats();
    assert_eq!(
        (stats.mirror_syncs, stats.mirror_failures),
        (1, 0),
        "{stats:?}"
    );
    let whole = Store::on_object_storage(moto.storage(BUCKET, "mirrored"));
    assert_eq!(
        values(&whole, "up"),
        (0..50).map(|i| i as f64).collect::<Vec<_>>()
    );
    assert_eq!(values(&mirror, "up").len(), 50);
    drop(live);

    // A mirror that does not answer: the flush still commits locally.
    let closed = crate::common::free_port();
    let unreachable = Store::resolve(
        Some(&format!("s3://{BUCKET}/mirrored")),
        Some(&format!("http://127.0.0.1:{closed}")),
    )
    .unwrap();
    let options = mcpops::store::LiveOptions {
        flush_samples: usize::MAX,
        flush_interval: std::time::Duration::from_secs(3600),
        mirror: Some(unreachable),
    };
    let live = mcpops::store::LiveStore::open(dir.path(), options).unwrap();
    let mut more = mcpops::model::MemorySink::default();
    let id = more.intern(SeriesKey::new("up", vec![("job".into(), "b".into())]));
    more.push(id, 1_767_571_200_000, 1.0).unwrap();
    live.append(&more).unwrap();
    assert!(live.flush().unwrap().is_some());
    let stats = live.stats();
    assert_eq!(stats.mirror_failures, 1, "{stats:?}");
    assert!(stats.last_mirror_error.is_some(), "{stats:?}");
    assert_eq!(stats.flush_failures, 0, "{stats:?}");
}

#[test]
fn lost_manifests_never_read_as_empty_and_repair_rebuilds_them_from_the_segments() {
    let Some(moto) = Moto::start("store_on_s3 repair") else {
        return;
    };
    moto.create_bucket(BUCKET);
    let store = format!("s3://{BUCKET}/repaired");
    let fleet = fleet().display().to_string();
    ok(
        &mcpops_at(&store, &moto, "k", &[], &["ingest", &fleet]),
        "ingest",
    );
    let before = ok(
        &mcpops_at(&store, &moto, "k", &[], &["export", "--format", "csv"]),
        "export",
    );
    // The manifests go (a lifecycle rule, a mistaken delete).
    let storage = moto.storage(BUCKET, "repaired");
    for o in storage.list(MANIFESTS_DIR).unwrap() {
        storage.delete(&o.key).unwrap();
    }
    // Damaged, not empty: every command says so, and a writer (whose
    // sweep would delete the segments) refuses to start.
    for args in [&["info"][..], &["ingest", &fleet]] {
        let o = mcpops_at(&store, &moto, "k", &[("MCPOPS_S3_GRACE_SECS", "0")], args);
        assert_eq!(o.status.code(), Some(5), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("mcpops repair"), "{}", text(&o));
    }
    // One segment is damaged too: repair sets it aside.
    let victim = storage
        .list("segments")
        .unwrap()
        .into_iter()
        .find(|o| o.key.ends_with(".parquet"))
        .unwrap();
    let mut bytes = storage.get(&victim.key).unwrap().unwrap().to_vec();
    bytes[10] ^= 0xff;
    storage
        .put_overwrite(&victim.key, Bytes::from(bytes))
        .unwrap();
    let o = mcpops_at(&store, &moto, "k", &[], &["repair"]);
    assert!(o.status.success(), "{}", text(&o));
    let quarantined = storage.list("quarantine").unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert!(storage.head(&victim.key).unwrap().is_none());
    ok(&mcpops_at(&store, &moto, "k", &[], &["verify"]), "verify");
    // Every other segment's samples are back.
    let after = ok(
        &mcpops_at(&store, &moto, "k", &[], &["export", "--format", "csv"]),
        "export",
    );
    assert!(after.lines().count() > 1 && after.lines().count() < before.lines().count());
    let kept: std::collections::HashSet<&str> = before.lines().collect();
    assert!(after.lines().all(|l| kept.contains(l)));
}
