#!/usr/bin/env python3
"""Renders a kustomization of k8s/ into what `podman kube play` (podman 4, Debian 12's 4.3)
plays, on one machine without Kubernetes:

    scripts/podman/kube.py k8s/overlays/local > sluice-pods.yaml
    podman kube play sluice-pods.yaml            # podman kube down sluice-pods.yaml

What podman cannot play is changed or left out, and said on stderr:
- Every containerPort is dropped: podman 4 publishes each on the machine (as if it were a
  hostPort), so a second replica could not start. Probes that name a port get its number; the
  pods' ports stay reachable at each pod's own address.
- A Secret becomes a podman secret of the same name (created or replaced now), which
  `envFrom: secretRef` reads: podman 4.3 stores a Secret of the played file in a form its own
  `secretRef` cannot read back.
- Kinds podman does not play (Namespace, Service, PodDisruptionBudget, HorizontalPodAutoscaler,
  KEDA's objects) are left out; scripts/check-deploy.sh validates them against their schemas.

Options: --replicas N sets every Deployment's replica count (to play a scaled copy).
Renders with `kustomize build`, `kubectl kustomize`, or the kubectl that scripts/setup.sh image
installs; $KUSTOMIZE overrides (a command taking the directory as its last argument).
"""

import argparse
import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

PLAYED = {"Pod", "Deployment", "DaemonSet", "ConfigMap", "PersistentVolumeClaim"}
TOOLS = os.environ.get("DEPLOY_TOOLS_DIR", os.path.expanduser("~/.cache/sluice/deploy-tools"))


def renderer():
    if os.environ.get("KUSTOMIZE"):
        return shlex.split(os.environ["KUSTOMIZE"])
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    for kubectl in (shutil.which("kubectl"), os.path.join(TOOLS, "bin", "kubectl")):
        if kubectl and os.access(kubectl, os.X_OK):
            return [kubectl, "kustomize"]
    sys.exit("kube.py: no kustomize or kubectl (scripts/setup.sh image installs kubectl)")


def podman(*args):
    """A podman command, through sudo when not root: the images and pods are root's (see
    scripts/image.sh)."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "--preserve-env=CONTAINERS_CONF"]
    return sudo + ["podman", *args]


def podman_secret(doc):
    """Creates (or replaces) the podman secret `envFrom: secretRef` reads for this Secret: a
    JSON object of each key's value in base64."""
    values = dict(doc.get("data") or {})
    for key, value in (doc.get("stringData") or {}).items():
        values[key] = base64.b64encode(value.encode()).decode()
    name = doc["metadata"]["name"]
    subprocess.run(podman("secret", "rm", name), capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(values, f)
        f.flush()
        subprocess.run(podman("secret", "create", name, f.name), check=True,
                       stdout=subprocess.DEVNULL)


def without_ports(pod_spec):
    """Drops the containers' ports, giving probes that name one its number."""
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        numbers = {p.get("name"): p["containerPort"] for p in container.pop("ports", [])}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            action = (container.get(probe) or {}).get("httpGet") or \
                (container.get(probe) or {}).get("tcpSocket")
            if action and isinstance(action.get("port"), str):
                action["port"] = numbers[action["port"]]


def adapt(docs, replicas):
    played, notes = [], []
    for doc in docs:
        if not doc:
            continue
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "Secret":
            podman_secret(doc)
            notes.append(f"Secret/{name}: made a podman secret")
        elif kind not in PLAYED:
            notes.append(f"{kind}/{name}: not played by podman, left out")
        else:
            if kind in ("Deployment", "DaemonSet"):
                if replicas is not None and kind == "Deployment":
                    doc["spec"]["replicas"] = replicas
                without_ports(doc["spec"]["template"]["spec"])
            elif kind == "Pod":
                without_ports(doc["spec"])
            played.append(doc)
    return played, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kustomization", help="a directory with a kustomization.yaml")
    parser.add_argument("--replicas", type=int)
    args = parser.parse_args()
    rendered = subprocess.run(renderer() + [args.kustomization], check=True,
                              capture_output=True, text=True).stdout
    played, notes = adapt(yaml.safe_load_all(rendered), args.replicas)
    for note in notes:
        print(f"kube.py: {note}", file=sys.stderr)
    yaml.safe_dump_all(played, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
