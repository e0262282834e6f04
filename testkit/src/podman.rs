//! Containers and pods of the caller's own, run by podman (no daemon) with the project's
//! settings (`scripts/podman/containers.conf`), from the image `scripts/image.sh` builds out of
//! the repository's Dockerfile; and the manifests of `k8s/` played with `podman kube play`
//! through `scripts/podman/kube.py`. Containers are removed, and played manifests taken down,
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The image the tests run, as `scripts/image.sh` tags it by default.
pub const IMAGE: &str = "localhost/sluice:latest";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// Whether this process runs as root: podman's images and pods are root's (`scripts/image.sh`
/// makes them so), reached through `sudo` otherwise.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uid = s
                .lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(1)?;
            Some(uid == "0")
        })
        .unwrap_or(false)
}

/// A `podman` command with the project's settings (unless `CONTAINERS_CONF` names others), as
/// root.
pub fn podman() -> Command {
    let mut cmd = if is_root() {
        Command::new("podman")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["--preserve-env=CONTAINERS_CONF", "podman"]);
        sudo
    };
    with_settings(&mut cmd).stdin(Stdio::null());
    cmd
}

/// Gives `cmd` (podman, or a script that runs it) the project's podman settings, unless
/// `CONTAINERS_CONF` names others.
pub fn with_settings(cmd: &mut Command) -> &mut Command {
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        cmd.env(
            "CONTAINERS_CONF",
            root().join("scripts/podman/containers.conf"),
        );
    }
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// Runs `podman ARGS` and returns its output, or its status and what it printed.
pub fn try_podman(args: &[&str]) -> Result<String, String> {
    let out = podman()
        .args(args)
        .output()
        .map_err(|e| format!("cannot run podman (scripts/setup.sh image installs it): {e}"))?;
    let (stdout, stderr) = text(&out);
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "podman {} failed ({}): {stderr}\n{stdout}",
            args.join(" "),
            out.status
        ))
    }
}

/// [`try_podman`], panicking on failure.
pub fn run_podman(args: &[&str]) -> String {
    try_podman(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The image, built from the current tree by `scripts/image.sh` once per test process (a
/// second build takes only what changed from podman's cache). `SLUICE_TEST_IMAGE=NAME` runs
/// the tests on the image NAME as it is instead, without building (when changing the tests
/// themselves).
pub fn image() -> &'static str {
    static GIVEN: OnceLock<Option<String>> = OnceLock::new();
    if let Some(name) = GIVEN.get_or_init(|| std::env::var("SLUICE_TEST_IMAGE").ok()) {
        return name;
    }
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new(root().join("scripts/image.sh"))
            .arg(IMAGE)
            .output()
            .map_err(|e| format!("cannot run scripts/image.sh: {e}"))?;
        let (stdout, stderr) = text(&out);
        eprintln!("{stderr}");
        out.status.success().then_some(()).ok_or_else(|| {
            format!(
                "scripts/image.sh failed ({}):\n{stderr}\n{stdout}",
                out.status
            )
        })
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    IMAGE
}

/// What a container printed so far, stdout then stderr (podman keeps them apart).
pub fn logs(container: &str) -> String {
    let out = podman()
        .args(["logs", container])
        .output()
        .expect("podman logs");
    let (stdout, stderr) = text(&out);
    stdout + "\n" + &stderr
}

/// A container of the test's own, removed (killed if running) when dropped.
pub struct Container {
    /// Its name.
    pub name: String,
}

impl Container {
    /// Starts `podman run -d --name NAME OPTIONS IMAGE ARGS` and returns it.
    pub fn start(options: &[&str], args: &[&str]) -> Container {
        let name = crate::unique("sluice-ctr");
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(options);
        all.push(image());
        all.extend_from_slice(args);
        run_podman(&all);
        Container { name }
    }

    /// `podman inspect --format FORMAT` of the container.
    pub fn inspect(&self, format: &str) -> String {
        run_podman(&["inspect", "--format", format, &self.name])
    }

    /// Its address on its podman network.
    pub fn address(&self) -> String {
        self.inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    }

    /// What it printed so far, stdout and stderr.
    pub fn logs(&self) -> String {
        logs(&self.name)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "-f", "-t", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Manifests played with `podman kube play`, taken down when dropped.
pub struct Played {
    file: PathBuf,
    /// The podman secrets `kube.py` made of the manifests' Secrets.
    secrets: Vec<String>,
    /// The volumes the play made (of ConfigMaps): `kube down` leaves them.
    volumes: Vec<String>,
}

impl Played {
    /// Renders `kustomization` with `scripts/podman/kube.py` (with `--replicas` when given)
    /// into `dir`, and plays it (`--replace`: pods of an earlier play of the same names are
    /// taken down first).
    pub fn play(kustomization: &Path, replicas: Option<u32>, dir: &Path) -> Played {
        image();
        let file = dir.join(format!("pods-{}.yaml", crate::unique("play")));
        let mut render = Command::new(root().join("scripts/podman/kube.py"));
        render.arg(kustomization);
        if let Some(n) = replicas {
            render.arg("--replicas").arg(n.to_string());
        }
        let out = with_settings(&mut render)
            .output()
            .expect("scripts/podman/kube.py");
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "kube.py {} failed: {stderr}",
            kustomization.display()
        );
        eprintln!("{stderr}");
        let secrets = stderr
            .lines()
            .filter_map(|l| {
                l.strip_prefix("kube.py: Secret/")?
                    .strip_suffix(": made a podman secret")
            })
            .map(str::to_string)
            .collect();
        std::fs::write(&file, stdout + "\n").expect("write the played manifests");
        let volumes = || -> Vec<String> {
            let list = run_podman(&["volume", "ls", "--quiet"]);
            list.lines().map(str::to_string).collect()
        };
        let before = volumes();
        let mut played = Played {
            file,
            secrets,
            volumes: Vec::new(),
        };
        let path = played.file.to_str().expect("utf-8 path").to_string();
        let result = try_podman(&["kube", "play", "--replace", &path]);
        played.volumes = volumes()
            .into_iter()
            .filter(|v| !before.contains(v))
            .collect();
        if let Err(e) = result {
            panic!("{e}");
        }
        played
    }

    /// The file played.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        let _ = podman()
            .args(["kube", "down"])
            .arg(&self.file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for volume in &self.volumes {
            let _ = podman()
                .args(["volume", "rm", "--force", volume])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for secret in &self.secrets {
            let _ = podman()
                .args(["secret", "rm", secret])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
