"""The Kubernetes manifests in infra/k8s stay valid without a cluster.

Every YAML document parses and names itself; kustomizations list files that exist and no manifest is
left out of them; workload selectors match their pod labels; every Service and PodDisruptionBudget selects
some workload and every port a Service targets exists; our containers set only environment variables
the code reads, and every Secret/ConfigMap they reference (env, volumes) exists in the base with that
key; a one-replica Deployment exists for every seed/centres/*.yaml; Kafka keeps replication factor 3 and
min.insync.replicas 2, internal topics included; the generated files are what generate_centres.py
writes. Each check is a function returning problems, and ``test_checks_can_fail`` breaks copies of the
manifests on purpose to show that each check notices.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
BASE = K8S / "base"
REGION = K8S / "overlays" / "region"
SEED_DIR = REPO / "seed" / "centres"
CONTAINERFILE = REPO / "infra" / "container" / "Containerfile"
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
OUR_IMAGE = "metrofed"  # the name in the base; overlays rewrite it to <registry>/metrofed:<tag>

# The variables the brief lists as the services' configuration; each must still be read by the code.
DOCUMENTED_ENV = {
    "KAFKA_BOOTSTRAP", "DATABASE_URL", "METROFED_LISTEN", "ZIPKIN_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "METROFED_OUTBOX_POLL_SECONDS", "METROFED_SILENCE_SECONDS", "METROFED_TRUST_FILE",
    "METROFED_SIGNING_KEY", "LOG_LEVEL",
}
_ENV_READ = re.compile(r"""(?:os\.environ\.get|os\.getenv|_env_float|_env)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
                       r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]""")


def code_env_vars() -> set[str]:
    """Every environment variable name the services' code reads (metrofed/, services/, gateway/)."""
    names = set()
    for root in ("metrofed", "services", "gateway"):
        for path in (REPO / root).rglob("*.py"):
            if "_pb2" in path.name:
                continue
            for m in _ENV_READ.finditer(path.read_text(encoding="utf-8")):
                names.add(m.group(1) or m.group(2))
    return names


ALLOWED_ENV = {n for n in code_env_vars() if not n.startswith("METROFED_TEST_")}  # fault injection: never


# ---- loading ----------------------------------------------------------------------------------------

class Doc(dict):
    """A manifest with the file it came from."""
    source: Path


def load_file(path: Path) -> list[Doc]:
    out = []
    for raw in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if raw is None:
            continue
        doc = Doc(raw)
        doc.source = path
        out.append(doc)
    return out


def kustomization(directory: Path) -> dict:
    return yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))


def resolve(directory: Path, problems: list[str] | None = None, seen: set[Path] | None = None) -> list[Doc]:
    """The documents a kustomization directory's ``resources`` bring in, recursively (files and dirs)."""
    problems = problems if problems is not None else []
    seen = seen if seen is not None else set()
    docs: list[Doc] = []
    for entry in kustomization(directory).get("resources", []) or []:
        target = (directory / entry).resolve()
        if target.is_dir():
            if not (target / "kustomization.yaml").is_file():
                problems.append(f"{directory}: resource {entry} is a directory without kustomization.yaml")
                continue
            docs += resolve(target, problems, seen)
        elif target.is_file():
            seen.add(target)
            docs += load_file(target)
        else:
            problems.append(f"{directory}/kustomization.yaml: resource {entry} does not exist")
    return docs


def base_docs() -> list[Doc]:
    return resolve(BASE)


def render_region(docs: list[Doc]) -> list[Doc]:
    """The subset of kustomize the region overlay uses: namespace, images, replicas."""
    k = kustomization(REGION)
    out = [copy.deepcopy(d) for d in docs]
    extra = [e for e in k.get("resources", []) if (REGION / e).is_file()]
    for e in extra:
        out += load_file(REGION / e)
    images = {i["name"]: i for i in k.get("images", [])}
    replicas = {r["name"]: r["count"] for r in k.get("replicas", [])}
    for d in out:
        if k.get("namespace") and d["kind"] != "Namespace":
            d["metadata"]["namespace"] = k["namespace"]
        if d["kind"] in WORKLOADS and d["metadata"]["name"] in replicas:
            d["spec"]["replicas"] = replicas[d["metadata"]["name"]]
        for c in containers(d):
            name, _, tag = c["image"].partition(":")
            if name in images:
                img = images[name]
                c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag or 'latest')}"
    return out


# ---- helpers ----------------------------------------------------------------------------------------

def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in WORKLOADS:
        return doc["spec"]["template"]["spec"]
    return None


def containers(doc: dict, *, init: bool = True) -> list[dict]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return list(spec.get("containers", [])) + (list(spec.get("initContainers", [])) if init else [])


def is_ours(container: dict) -> bool:
    name = container["image"].rsplit(":", 1)[0] if ":" in container["image"].rsplit("/", 1)[-1] \
        else container["image"]
    return name == OUR_IMAGE or name.endswith("/" + OUR_IMAGE)


def template_labels(doc: dict) -> dict:
    return doc["spec"]["template"]["metadata"].get("labels", {}) or {}


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def by_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def find(docs, kind: str, name: str) -> dict | None:
    return next((d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name), None)


def env_value(container: dict, name: str):
    for e in container.get("env", []) or []:
        if e["name"] == name:
            return e.get("value", e.get("valueFrom"))
    return None


def properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def seed_ids() -> list[str]:
    return sorted(p.stem for p in SEED_DIR.glob("*.yaml"))


# ---- the checks: each returns a list of problems ----------------------------------------------------

def check_identity(docs) -> list[str]:
    problems = []
    seen = set()
    for d in docs:
        where = getattr(d, "source", "?")
        if not d.get("apiVersion") or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
            problems.append(f"{where}: document without apiVersion/kind/metadata.name: {str(d)[:80]}")
            continue
        key = (d["kind"], d["metadata"]["name"])
        if key in seen:
            problems.append(f"duplicate {key}")
        seen.add(key)
    return problems


def check_workload_selectors(docs) -> list[str]:
    problems = []
    for d in docs:
        if d.get("kind") not in {"Deployment", "StatefulSet", "DaemonSet"}:
            continue
        sel = (d["spec"].get("selector") or {}).get("matchLabels") or {}
        if not selects(sel, template_labels(d)):
            problems.append(f"{d['kind']}/{d['metadata']['name']}: selector {sel} does not match its pod labels "
                            f"{template_labels(d)}")
    return problems


def check_services(docs) -> list[str]:
    problems = []
    workloads = [d for d in docs if d.get("kind") in WORKLOADS - {"Job"}]
    for svc in by_kind(docs, "Service"):
        name = svc["metadata"]["name"]
        sel = svc["spec"].get("selector") or {}
        matched = [w for w in workloads if selects(sel, template_labels(w))]
        if not matched:
            problems.append(f"Service/{name}: selector {sel} matches no workload")
            continue
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for w in matched:
                ports = [p for c in containers(w, init=False) for p in c.get("ports", [])]
                if not any(target in (p.get("name"), p["containerPort"]) for p in ports):
                    problems.append(f"Service/{name}: targetPort {target!r} is no container port of "
                                    f"{w['kind']}/{w['metadata']['name']}")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"].get("matchLabels") or {}
        if not any(selects(sel, template_labels(w)) for w in workloads):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: selector {sel} matches no workload")
    for w in workloads:
        if w["kind"] == "StatefulSet" and not find(docs, "Service", w["spec"].get("serviceName", "")):
            problems.append(f"StatefulSet/{w['metadata']['name']}: serviceName {w['spec'].get('serviceName')!r} "
                            "is not a Service here")
    return problems


def check_probes(docs) -> list[str]:
    problems = []
    for d in docs:
        for c in containers(d, init=False):
            ports = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind) or {}
                for handler in ("grpc", "tcpSocket", "httpGet"):
                    if handler in probe and probe[handler]["port"] not in ports:
                        problems.append(f"{d['metadata']['name']}/{c['name']}: {kind} port "
                                        f"{probe[handler]['port']!r} is not a container port")
    return problems


def check_env(docs) -> list[str]:
    problems = []
    for d in docs:
        for c in containers(d):
            if not is_ours(c):
                continue
            for e in c.get("env", []) or []:
                if e["name"] not in ALLOWED_ENV:
                    problems.append(f"{d['metadata']['name']}/{c['name']}: env {e['name']} is read by no code")
            if c.get("envFrom"):
                problems.append(f"{d['metadata']['name']}/{c['name']}: envFrom hides which variables are set")
    return problems


def check_references(docs) -> list[str]:
    """secretKeyRef/configMapKeyRef and configMap/secret volumes point at objects (and keys) defined here."""
    def data_keys(doc) -> set[str]:
        return set(doc.get("data") or {}) | set(doc.get("stringData") or {})

    problems = []
    for d in docs:
        where = f"{d['kind']}/{d['metadata']['name']}"
        for c in containers(d):
            for e in c.get("env", []) or []:
                for ref_kind, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    ref = (e.get("valueFrom") or {}).get(ref_kind)
                    if ref is None:
                        continue
                    target = find(docs, kind, ref["name"])
                    if target is None:
                        problems.append(f"{where}: env {e['name']} refers to {kind} {ref['name']!r}, not defined")
                    elif ref["key"] not in data_keys(target):
                        problems.append(f"{where}: env {e['name']} refers to key {ref['key']!r} missing from "
                                        f"{kind} {ref['name']}")
        for v in (pod_spec(d) or {}).get("volumes", []) or []:
            for field, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
                if field not in v:
                    continue
                target = find(docs, kind, v[field][name_key])
                if target is None:
                    problems.append(f"{where}: volume {v['name']} refers to {kind} {v[field][name_key]!r}, "
                                    "not defined")
                    continue
                for item in v[field].get("items", []) or []:
                    if item["key"] not in data_keys(target):
                        problems.append(f"{where}: volume {v['name']} takes key {item['key']!r} missing from "
                                        f"{kind} {v[field][name_key]}")
    return problems


def check_centres(docs, ids: list[str]) -> list[str]:
    problems = []
    for centre_id in ids:
        name = f"centre-{centre_id}"
        dep = find(docs, "Deployment", name)
        if dep is None:
            problems.append(f"no Deployment {name} for seed/centres/{centre_id}.yaml")
            continue
        if dep["spec"].get("replicas") != 1:
            problems.append(f"Deployment/{name}: replicas {dep['spec'].get('replicas')}, a centre runs exactly 1")
        if (dep["spec"].get("strategy") or {}).get("type") != "Recreate":
            problems.append(f"Deployment/{name}: strategy must be Recreate (never two instances at once)")
        (main,) = [c for c in containers(dep, init=False) if is_ours(c)]
        if main.get("command", [])[-2:] != ["--seed", f"/seed/{centre_id}.yaml"]:
            problems.append(f"Deployment/{name}: command {main.get('command')} does not load its seed file")
        mount = next((m for m in main.get("volumeMounts", []) if m["mountPath"] == "/seed"), None)
        vol = next((v for v in pod_spec(dep).get("volumes", []) if mount and v["name"] == mount["name"]), None)
        cm = find(docs, "ConfigMap", vol["configMap"]["name"]) if vol and "configMap" in vol else None
        if cm is None or f"{centre_id}.yaml" not in (cm.get("data") or {}):
            problems.append(f"Deployment/{name}: /seed is not a ConfigMap holding {centre_id}.yaml")
        elif cm["data"][f"{centre_id}.yaml"] != (SEED_DIR / f"{centre_id}.yaml").read_text(encoding="utf-8"):
            problems.append(f"ConfigMap/{cm['metadata']['name']}: differs from seed/centres/{centre_id}.yaml")
    extra = {d["metadata"]["name"] for d in by_kind(docs, "Deployment")
             if d["metadata"]["name"].startswith("centre-")} - {f"centre-{i}" for i in ids}
    if extra:
        problems.append(f"centre Deployments without a seed file: {sorted(extra)}")
    return problems


def check_kafka(docs) -> list[str]:
    problems = []
    sts = find(docs, "StatefulSet", "kafka")
    cfg = find(docs, "ConfigMap", "kafka-config")
    if sts is None or cfg is None:
        return ["no StatefulSet kafka / ConfigMap kafka-config"]
    props = properties(cfg["data"]["server.properties.template"])
    if props.get("process.roles") != "broker,controller":
        problems.append(f"kafka: process.roles={props.get('process.roles')!r}, want combined broker,controller")
    voters = [v for v in props.get("controller.quorum.voters", "").split(",") if v]
    if len(voters) != sts["spec"].get("replicas"):
        problems.append(f"kafka: {len(voters)} controller.quorum.voters for {sts['spec'].get('replicas')} replicas")
    for i, voter in enumerate(voters):
        if not voter.startswith(f"{i}@kafka-{i}.kafka-headless."):
            problems.append(f"kafka: voter {voter!r} is not node {i} at kafka-{i}.kafka-headless")
    want = {"default.replication.factor": 3, "offsets.topic.replication.factor": 3,
            "transaction.state.log.replication.factor": 3, "share.coordinator.state.topic.replication.factor": 3,
            "min.insync.replicas": 2, "transaction.state.log.min.isr": 2, "share.coordinator.state.topic.min.isr": 2}
    for key, least in want.items():
        if int(props.get(key, 0)) < least:
            problems.append(f"kafka: {key}={props.get(key)!r}, want >= {least}")
    if props.get("auto.create.topics.enable") != "false":
        problems.append("kafka: auto.create.topics.enable must be false (topics are created with explicit configs)")
    if sts["spec"].get("replicas", 0) < 3:
        problems.append(f"kafka: {sts['spec'].get('replicas')} replicas, want 3")
    headless = find(docs, "Service", sts["spec"]["serviceName"])
    if headless is None or headless["spec"].get("clusterIP") != "None":
        problems.append("kafka: serviceName must be a headless Service")
    if not any(selects(p["spec"]["selector"].get("matchLabels", {}), template_labels(sts))
               for p in by_kind(docs, "PodDisruptionBudget")):
        problems.append("kafka: no PodDisruptionBudget")
    # Our topics: created by ensure-topics.sh with RF 3 / min ISR 2 and the code's partitions and configs.
    from metrofed.bus import topics

    script = (find(docs, "ConfigMap", "kafka-topics") or {}).get("data", {}).get("ensure-topics.sh", "")
    if "--replication-factor 3" not in script:
        problems.append("ensure-topics.sh: topics are not created with --replication-factor 3")
    creates = {m.group(1): m for m in re.finditer(r"^\s*create (\S+) (\d+)(.*)$", script, re.M)}
    for spec in [*topics.FEDERATION_TOPICS, topics.inbox_spec("${id}")]:
        m = creates.get(spec.name)
        if m is None:
            problems.append(f"ensure-topics.sh: does not create {spec.name}")
            continue
        if int(m.group(2)) != spec.partitions:
            problems.append(f"ensure-topics.sh: {spec.name} has {m.group(2)} partitions, code says {spec.partitions}")
        configs = dict(re.findall(r"--config (\S+?)=(\S+)", m.group(3)))
        if configs.get("min.insync.replicas") != "2":
            problems.append(f"ensure-topics.sh: {spec.name} min.insync.replicas={configs.get('min.insync.replicas')}")
        for key, value in spec.configs.items():
            if key != "min.insync.replicas" and configs.get(key) != str(value):
                problems.append(f"ensure-topics.sh: {spec.name} {key}={configs.get(key)!r}, code says {value!r}")
    return problems


def check_gateway(docs) -> list[str]:
    problems = []
    dep = find(docs, "Deployment", "gateway")
    if dep is None:
        return ["no Deployment gateway"]
    if dep["spec"].get("replicas", 1) < 3:
        problems.append(f"gateway: {dep['spec'].get('replicas')} replicas, want 3")
    (main,) = [c for c in containers(dep, init=False) if is_ours(c)]
    if env_value(main, "METROFED_LISTEN") != "0.0.0.0:50051":
        problems.append("gateway: METROFED_LISTEN must be 0.0.0.0:50051")
    if not isinstance(env_value(main, "DATABASE_URL"), dict) or "secretKeyRef" not in env_value(main, "DATABASE_URL"):
        problems.append("gateway: DATABASE_URL must come from a Secret")
    for probe in ("readinessProbe", "livenessProbe"):
        if "grpc" not in (main.get(probe) or {}):
            problems.append(f"gateway: {probe} must be a grpc probe on the health service")
    for key in ("requests", "limits"):
        if not (main.get("resources") or {}).get(key):
            problems.append(f"gateway: resources.{key} missing")
    if not any(selects(p["spec"]["selector"].get("matchLabels", {}), template_labels(dep))
               for p in by_kind(docs, "PodDisruptionBudget")):
        problems.append("gateway: no PodDisruptionBudget")
    svc = find(docs, "Service", "gateway")
    if svc is None or not any(p["port"] == 50051 for p in svc["spec"]["ports"]):
        problems.append("gateway: no Service on the gRPC port 50051")
    return problems


def all_problems(docs, ids=None) -> list[str]:
    ids = seed_ids() if ids is None else ids
    identity = check_identity(docs)
    if identity:  # the other checks look objects up by kind and name
        return identity
    return (check_workload_selectors(docs) + check_services(docs) + check_probes(docs)
            + check_env(docs) + check_references(docs) + check_centres(docs, ids) + check_kafka(docs)
            + check_gateway(docs))


# ---- tests ------------------------------------------------------------------------------------------

def test_every_yaml_file_parses_and_is_in_a_kustomization():
    files = sorted(K8S.rglob("*.yaml"))
    assert files
    for path in files:
        docs = load_file(path)  # raises on a parse error
        assert docs, f"{path}: no document"
    listed: set[Path] = set()
    problems: list[str] = []
    resolve(REGION, problems, listed)
    assert problems == []
    orphans = [p.relative_to(REPO) for p in files if p.name != "kustomization.yaml" and p.resolve() not in listed]
    assert orphans == [], f"manifests no kustomization lists: {orphans}"


def test_kustomization_resources_exist():
    for kfile in K8S.rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        for entry in k.get("resources", []) or []:
            assert (kfile.parent / entry).exists(), f"{kfile}: resource {entry} does not exist"
        for gen in k.get("secretGenerator", []) + k.get("configMapGenerator", []):
            for env in gen.get("envs", []):
                assert (kfile.parent / f"{env}.example").is_file(), f"{kfile}: {env} has no .example template"


def test_documented_env_vars_are_read_by_the_code():
    assert DOCUMENTED_ENV <= ALLOWED_ENV, f"no longer read by the code: {DOCUMENTED_ENV - ALLOWED_ENV}"


def test_base_manifests_are_valid():
    assert all_problems(base_docs()) == []


def test_region_overlay_is_valid_and_pins_the_image():
    docs = render_region(base_docs())
    assert all_problems(docs) == []
    for d in docs:
        assert d["metadata"].get("namespace") == "metrofed" or d["kind"] == "Namespace"
        for c in containers(d):
            if is_ours(c):
                assert c["image"] != OUR_IMAGE and ":" in c["image"].rsplit("/", 1)[-1], c["image"]
                assert not c["image"].endswith(":latest"), c["image"]
    assert find(docs, "Deployment", "gateway")["spec"]["replicas"] == 3


def test_every_seed_centre_has_one_single_replica_deployment():
    ids = seed_ids()
    assert len(ids) == 18
    deployments = [d for d in by_kind(base_docs(), "Deployment") if d["metadata"]["name"].startswith("centre-")]
    assert sorted(d["metadata"]["name"] for d in deployments) == [f"centre-{i}" for i in ids]
    assert {d["spec"]["replicas"] for d in deployments} == {1}
    replicas = {r["name"] for r in kustomization(REGION).get("replicas", [])}
    assert not any(n.startswith("centre-") for n in replicas), "an overlay must not scale a centre"


def test_kafka_replication_settings():
    assert check_kafka(base_docs()) == []


def test_kafka_image_is_the_devstack_version():
    pom = (REPO / "infra" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom).group(1)
    images = {c["image"] for d in base_docs() for c in containers(d) if c["image"].startswith("apache/kafka")}
    assert images == {f"apache/kafka:{version}"}


def test_generated_files_are_up_to_date():
    spec = importlib.util.spec_from_file_location("generate_centres", K8S / "generate_centres.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = [p.relative_to(REPO) for p in gen.stale(gen.render())]
    assert stale == [], f"run .venv/bin/python infra/k8s/generate_centres.py; out of date: {stale}"


def test_containerfile():
    text = "\n".join(line for line in CONTAINERFILE.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms), froms
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    assert re.match(r"^\d+(:\d+)?$", users[-1]), "numeric USER, so runAsNonRoot can check it"
    assert "grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=." in text
    assert "['project']['dependencies']" in text, "install the pinned runtime dependencies of pyproject.toml"
    assert "[dev]" not in text and "pytest" not in text, "no dev dependencies in the image"
    for src in ("metrofed", "services", "gateway", "protos"):
        assert re.search(rf"^COPY {src} ", text, re.M), f"{src}/ is not copied into the image"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed")
def test_kubectl_kustomize_builds_the_region(tmp_path):
    """The real kustomize: the overlay builds, the secret files replace every placeholder, checks pass."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("__pycache__", "*.env"))
    secrets_dir = tree / "overlays" / "region" / "secrets"
    for example in secrets_dir.glob("*.env.example"):
        example.with_suffix("").write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    # what `metrofed trust init` / `metrofed enrol` make (docs/security.md): the trust document, one key per party
    (secrets_dir / "trust.json").write_text("{}", encoding="utf-8")
    for line in (secrets_dir / "signing-keys.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# ") and line.endswith(".signing.key") and ": " in line:
            key_file = secrets_dir / line.split(": ", 1)[1].removeprefix("secrets/")
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", encoding="utf-8")
    out = subprocess.run(["kubectl", "kustomize", str(tree / "overlays" / "region")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    docs = [Doc(d) for d in yaml.safe_load_all(out.stdout) if d]
    for d in by_kind(docs, "Secret"):
        values = list((d.get("data") or {}).values()) + list((d.get("stringData") or {}).values())
        assert "REPLACE-ME" not in str(values) and "stringData" not in d, d["metadata"]["name"]
    assert all_problems(docs) == []
    # Without the (git-ignored) secret files the build stops instead of shipping placeholders.
    for env in (tree / "overlays" / "region" / "secrets").glob("*.env"):
        env.unlink()
    failed = subprocess.run(["kubectl", "kustomize", str(tree / "overlays" / "region")], capture_output=True,
                            text=True, timeout=120)
    assert failed.returncode != 0


# ---- the checks can fail ----------------------------------------------------------------------------

def _mutate_gateway_selector(docs):
    find(docs, "Deployment", "gateway")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "other"


def _mutate_service_selector(docs):
    find(docs, "Service", "zipkin")["spec"]["selector"] = {"app.kubernetes.io/name": "zipkn"}


def _mutate_service_port(docs):
    find(docs, "Service", "gateway")["spec"]["ports"][0]["targetPort"] = "grpc-web"


def _mutate_env(docs):
    c = find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    c["env"].append({"name": "METROFED_LISTEN_ADDRESS", "value": "0.0.0.0:50051"})


def _mutate_test_env(docs):
    c = find(docs, "Deployment", "centre-sh-icv")["spec"]["template"]["spec"]["containers"][0]
    c["env"].append({"name": "METROFED_TEST_CRASH_AFTER_INBOX_COMMIT", "value": "1"})


def _mutate_secret_ref(docs):
    c = find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    next(e for e in c["env"] if e["name"] == "DATABASE_URL")["valueFrom"]["secretKeyRef"]["name"] = "db-urls"


def _mutate_secret_key(docs):
    find(docs, "Secret", "metrofed-signing-keys")["stringData"].pop("centre-sh-icv")


def _mutate_configmap_ref(docs):
    find(docs, "StatefulSet", "kafka")["spec"]["template"]["spec"]["containers"][0]["env"][1]["valueFrom"][
        "configMapKeyRef"]["name"] = "kafka-cfg"


def _mutate_centre_replicas(docs):
    find(docs, "Deployment", "centre-hz-oil-gas")["spec"]["replicas"] = 2


def _mutate_centre_missing(docs):
    docs.remove(find(docs, "Deployment", "centre-wh-robot"))


def _mutate_min_isr(docs):
    cfg = find(docs, "ConfigMap", "kafka-config")
    cfg["data"]["server.properties.template"] = cfg["data"]["server.properties.template"].replace(
        "\nmin.insync.replicas=2", "\nmin.insync.replicas=1")


def _mutate_topic_rf(docs):
    cfg = find(docs, "ConfigMap", "kafka-topics")
    cfg["data"]["ensure-topics.sh"] = cfg["data"]["ensure-topics.sh"].replace("min.insync.replicas=2",
                                                                              "min.insync.replicas=1")


def _mutate_voters(docs):
    find(docs, "StatefulSet", "kafka")["spec"]["replicas"] = 5


def _mutate_probe(docs):
    c = find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}}


def _mutate_identity(docs):
    del find(docs, "Service", "postgres")["metadata"]["name"]


MUTATIONS = {
    "mismatched workload selector": _mutate_gateway_selector,
    "service selects nothing": _mutate_service_selector,
    "service targets a missing port": _mutate_service_port,
    "env var no code reads": _mutate_env,
    "test-only env var": _mutate_test_env,
    "secretKeyRef to a missing Secret": _mutate_secret_ref,
    "secretKeyRef to a missing key": _mutate_secret_key,
    "configMapKeyRef to a missing ConfigMap": _mutate_configmap_ref,
    "centre with 2 replicas": _mutate_centre_replicas,
    "centre without a Deployment": _mutate_centre_missing,
    "broker min ISR 1": _mutate_min_isr,
    "topic min ISR 1": _mutate_topic_rf,
    "replicas and voters disagree": _mutate_voters,
    "gateway probe not grpc": _mutate_probe,
    "document without a name": _mutate_identity,
}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=list(MUTATIONS))
def test_checks_can_fail(mutation):
    docs = [copy.deepcopy(d) for d in base_docs()]
    assert all_problems(docs) == []
    MUTATIONS[mutation](docs)
    assert all_problems(docs) != [], f"no check noticed: {mutation}"
