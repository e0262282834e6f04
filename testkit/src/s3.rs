//! An S3 server of the caller's own (moto in server mode, on a free port), and boto3 as an
//! independent client to read back what was stored.

use std::process::Command;
use std::time::Duration;

use crate::process::Process;

/// A running moto S3 server, killed when dropped.
pub struct Moto {
    process: Process,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

fn spawn(port: u16) -> Process {
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    Process::listening(&mut cmd, port, Duration::from_secs(30))
}

impl Moto {
    /// Starts moto and waits until it accepts connections.
    pub fn start() -> Moto {
        let port = crate::free_port();
        Moto {
            process: spawn(port),
            port,
        }
    }

    /// Kills the server; what it stored is gone with it (moto keeps it in memory).
    pub fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel and never answered,
    /// as with a store that hangs. What it stored is kept.
    pub fn pause(&self) {
        crate::process::signal(&self.process, "STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        crate::process::signal(&self.process, "CONT");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `options:` of an `object_store` output for this server.
    pub fn options(&self) -> String {
        format!(
            "{{endpoint: '{}', allow_http: 'true', region: us-east-1, access_key_id: test, secret_access_key: test, timeout: 2s}}",
            self.endpoint()
        )
    }

    /// Creates `bucket` with boto3.
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3(&format!("s3.create_bucket(Bucket={bucket:?})"));
    }

    /// Every object under `prefix` in `bucket`, read with boto3: key, and its lines after
    /// decompressing (`.gz`, `.zst`).
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
        let script = format!(
            "import gzip, json, zstandard\n\
             out = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket={bucket:?}, Prefix={prefix:?}):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       body = s3.get_object(Bucket={bucket:?}, Key=o['Key'])['Body'].read()\n\
             \x20       if o['Key'].endswith('.gz'): body = gzip.decompress(body)\n\
             \x20       if o['Key'].endswith('.zst'): body = zstandard.ZstdDecompressor().decompressobj().decompress(body)\n\
             \x20       out.append([o['Key'], body.decode().splitlines()])\n\
             print(json.dumps(out))"
        );
        let text = self.boto3(&script);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Every Parquet object under `prefix` in `bucket`, read with boto3 and pyarrow: `key`,
    /// `schema` (its columns as `name: type`, with ` not null` for required ones, in pyarrow's
    /// words), `compression` (of its first column: `SNAPPY`, `ZSTD`, ...) and `rows` (decimals
    /// as text, times in ISO 8601 to the millisecond).
    pub fn parquet(&self, bucket: &str, prefix: &str) -> Vec<serde_json::Value> {
        let script = format!(
            "import datetime, io, json, pyarrow.parquet as pq\n\
             def text(v): return v.isoformat(timespec='milliseconds') if isinstance(v, datetime.datetime) else str(v)\n\
             out = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket={bucket:?}, Prefix={prefix:?}):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       body = s3.get_object(Bucket={bucket:?}, Key=o['Key'])['Body'].read()\n\
             \x20       t = pq.read_table(io.BytesIO(body))\n\
             \x20       schema = [f'{{f.name}}: {{f.type}}' + ('' if f.nullable else ' not null') for f in t.schema]\n\
             \x20       codec = pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression\n\
             \x20       out.append({{'key': o['Key'], 'schema': schema, 'compression': codec, 'rows': t.to_pylist()}})\n\
             print(json.dumps(out, default=text))"
        );
        let text = self.boto3(&script);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs `script` with `s3`, a boto3 client of this server; returns what it printed.
    fn boto3(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url={:?}, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
            self.endpoint()
        );
        crate::python(&(prelude + script), "boto3")
    }
}
