//! Azure Blob Storage of the caller's own (Azurite, on a free port, storage in a temp dir), and
//! the Azure SDK for Python as an independent client to read back what was stored.

use std::process::Command;
use std::time::Duration;

use crate::process::Process;

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob service, killed when dropped.
pub struct Azurite {
    // Held for its drop, which kills Azurite.
    _process: Process,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    // Declared after the process: removed once Azurite no longer writes to it.
    _store: tempfile::TempDir,
}

impl Azurite {
    /// Starts Azurite's blob service and waits until it accepts connections.
    pub fn start() -> Azurite {
        let port = crate::free_port();
        let store = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new("azurite-blob");
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(store.path())
            .args(["--silent", "--skipApiVersionCheck", "--loose"]);
        let process = Process::listening(&mut cmd, port, Duration::from_secs(30));
        Azurite {
            _process: process,
            port,
            _store: store,
        }
    }

    /// The blob endpoint, `http://127.0.0.1:PORT`: `AZURITE_BLOB_STORAGE_URL` for sluice with
    /// `use_emulator`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `container`.
    pub fn create_container(&self, container: &str) {
        self.python(&format!("blobs.create_container({container:?})"));
    }

    /// Every blob under `prefix` in `container`: name, and its lines after decompressing
    /// (`.gz`, `.zst`).
    pub fn blobs(&self, container: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
        let script = format!(
            "import gzip, json, zstandard\n\
             c = blobs.get_container_client({container:?})\n\
             out = []\n\
             for b in c.list_blobs(name_starts_with={prefix:?}):\n\
             \x20   body = c.download_blob(b.name).readall()\n\
             \x20   if b.name.endswith('.gz'): body = gzip.decompress(body)\n\
             \x20   if b.name.endswith('.zst'): body = zstandard.ZstdDecompressor().decompressobj().decompress(body)\n\
             \x20   out.append([b.name, body.decode().splitlines()])\n\
             print(json.dumps(out))"
        );
        let text = self.python(&script);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs `script` with `blobs`, a `BlobServiceClient` of this Azurite; returns its output.
    fn python(&self, script: &str) -> String {
        let prelude = format!(
            "from azure.storage.blob import BlobServiceClient\n\
             blobs = BlobServiceClient.from_connection_string('DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/{ACCOUNT};')\n",
            self.url()
        );
        crate::python(&(prelude + script), "the Azure SDK")
    }
}
