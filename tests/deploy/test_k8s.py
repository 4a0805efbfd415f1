#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/deploy/test_k8s.py - the Kubernetes manifests of deploy/k8s/ checked
without a cluster (docs/operations.md, "On Kubernetes"): every file of the
kustomization parses (python3-yaml) and has apiVersion, kind, metadata.name;
the StatefulSet of vigild has a headless Service, a volume claim template
and several replicas; the CronJob starts an Indexed Job (completions =
parallelism); the console is a Deployment; every Service selects pods of a
workload and names ports they have; every volume mount, claim, ConfigMap and
Secret is defined (the one Secret made by hand is listed here), a Secret's
files not readable by other users (vigil-console refuses them); the shell
scripts in the manifests pass `sh -n`; the vigild.ini of the ConfigMap passes
`vigild --check-config`; the commands run are programs the build installs.
Every pod meets the Pod Security Standard "restricted" (non-root, seccomp
RuntimeDefault, no privilege escalation, every capability dropped); the
CronJob's script refuses a PARTS out of 2-4096 or an index not below it; the
init container that pulls the night exits 0 on a first day (no night built
yet: vigild must start); the state a program keeps (--data, --state) is on
a PersistentVolumeClaim; the replicas stay ready when degraded (card-routed:
docs/security.md, "Readiness").

    test_k8s.py SOURCE_ROOT VIGILD RULES

Exit 77 (skipped) without python3-yaml.
"""
import os
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("test_k8s: SKIP: python3-yaml not installed (deploy/bootstrap.sh installs it)")
    sys.exit(77)

SRC, VIGILD, RULES = sys.argv[1:4]
K8S = os.path.join(SRC, "deploy", "k8s")
EXTERNAL_SECRETS = {"vigil-console-tokens"}  # made by hand (docs/operations.md)
PROGRAMS = {"vigild", "vigil-console", "vigil-rebuild", "vigil-ship",
            "vigil-install-generation", "sh"}
errors = []


def err(msg):
    errors.append(msg)


kust = yaml.safe_load(open(os.path.join(K8S, "kustomization.yaml")))
docs = []
for f in kust["resources"]:
    for d in yaml.safe_load_all(open(os.path.join(K8S, f))):
        if d is None:
            continue
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                err(f"{f}: a document without {key}")
        if "name" not in d.get("metadata", {}):
            err(f"{f}: a {d.get('kind')} without metadata.name")
        d["_file"] = f
        docs.append(d)
listed = set(kust["resources"])
on_disk = {f for f in os.listdir(K8S) if f.endswith(".yaml") and f != "kustomization.yaml"}
if listed != on_disk:
    err(f"kustomization resources {sorted(listed)} != files {sorted(on_disk)}")

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d


def one(kind, name):
    d = by_kind.get(kind, {}).get(name)
    if d is None:
        err(f"no {kind} {name}")
    return d or {}


pvcs = set(by_kind.get("PersistentVolumeClaim", {}))
cms = set(by_kind.get("ConfigMap", {}))


def pod_spec(kind, d):
    if kind == "CronJob":
        return d["spec"]["jobTemplate"]["spec"]["template"]
    return d["spec"]["template"]


def run_init(where, c):
    """Runs an init container's command as on the first day: empty
    volumes, the deploy/ scripts on PATH. It must let the pod start."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = []
        for a in c["command"]:
            for m in c.get("volumeMounts", []):
                d = os.path.join(tmp, m["name"])
                os.makedirs(d, exist_ok=True)
                a = a.replace(m["mountPath"], d)
            cmd.append(a)
        env = dict(os.environ, PATH=os.path.join(SRC, "deploy") + ":" + os.environ["PATH"])
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            err(f"{where}: init container {c['name']} exits {r.returncode} with nothing built "
                f"yet, so the pod never starts: {r.stderr.strip()}")
        elif r.stderr.strip():
            # nothing built is the first day, not a failure to log
            err(f"{where}: init container {c['name']} reports a failure with nothing built "
                f"yet: {r.stderr.strip()}")


def check_pod(where, tmpl, claim_templates=()):
    spec = tmpl["spec"]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    psc = spec.get("securityContext", {})
    if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(f"{where}: pod securityContext: runAsNonRoot and seccompProfile RuntimeDefault "
            "(Pod Security Standard restricted)")
    for c in spec.get("initContainers", []):
        run_init(where, c)
    for v in vols.values():
        if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in pvcs:
            err(f"{where}: volume {v['name']}: no PersistentVolumeClaim "
                f"{v['persistentVolumeClaim']['claimName']}")
        if "configMap" in v and v["configMap"]["name"] not in cms:
            err(f"{where}: volume {v['name']}: no ConfigMap {v['configMap']['name']}")
        if "secret" in v and v["secret"]["secretName"] not in EXTERNAL_SECRETS:
            err(f"{where}: volume {v['name']}: Secret {v['secret']['secretName']} not documented")
        # a Secret holds secrets files, which vigil's programs refuse when
        # other users may read or write them (common/file.c); Kubernetes
        # gives a Secret's files mode 0644 unless told otherwise
        if "secret" in v:
            mode = v["secret"].get("defaultMode", 0o644)
            for item in v["secret"].get("items", []):
                mode |= item.get("mode", 0)
            if mode & 0o006:
                err(f"{where}: volume {v['name']}: Secret files of mode {mode:04o}, which "
                    "vigil-console refuses (other users may read them): set defaultMode 0440")
    ports = set()
    for c in spec.get("initContainers", []) + spec["containers"]:
        cw = f"{where}: container {c['name']}"
        if not c.get("image"):
            err(f"{cw}: no image")
        cmd = c.get("command") or c.get("args")
        if not cmd:
            err(f"{cw}: no command")
        elif cmd[0] not in PROGRAMS:
            err(f"{cw}: runs {cmd[0]}, not a program of the build")
        elif cmd[0] == "sh":
            script = cmd[cmd.index("-c") + 1]
            r = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
            if r.returncode != 0:
                err(f"{cw}: sh -n: {r.stderr.strip()}")
        csc = c.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False or \
                csc.get("capabilities", {}).get("drop") != ["ALL"]:
            err(f"{cw}: securityContext: allowPrivilegeEscalation false and capabilities "
                "drop [ALL] (Pod Security Standard restricted)")
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols and m["name"] not in claim_templates:
                err(f"{cw}: mounts {m['name']}, which is no volume")
        # the state a program keeps outlives the pod
        for flag in ("--data", "--state"):
            if cmd and flag in cmd:
                path = cmd[cmd.index(flag) + 1]
                ms = [m for m in c.get("volumeMounts", []) if m["mountPath"] == path]
                v = vols.get(ms[0]["name"], {}) if ms else {}
                if not ms or not ("persistentVolumeClaim" in v or ms[0]["name"] in claim_templates):
                    err(f"{cw}: {flag} {path} is not on a PersistentVolumeClaim (lost with the pod)")
        for p in c.get("ports", []):
            ports.add(p.get("name"))
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            pr = c.get(probe, {})
            port = (pr.get("httpGet") or pr.get("tcpSocket") or {}).get("port")
            if port is not None and isinstance(port, str) and port not in ports:
                err(f"{cw}: {probe} on port {port}, which it does not name")
            # vigild's probes' listener answers these paths only (docs/vigild.md,
            # "The probes' listener"; anything else is 404)
            path = (pr.get("httpGet") or {}).get("path")
            if port == "health" and path not in ("/healthz", "/readyz", "/livez"):
                err(f"{cw}: {probe} GET {path}: the probes' listener answers /healthz, "
                    "/readyz and /livez only")
    return ports


workloads = []  # (labels, ports)
ss = one("StatefulSet", "vigild")
if ss:
    spec = ss["spec"]
    if spec.get("replicas", 1) < 2:
        err("StatefulSet vigild: fewer than 2 replicas")
    cts = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]
    if not cts:
        err("StatefulSet vigild: no volumeClaimTemplates (a volume per replica)")
    svc = one("Service", spec.get("serviceName", ""))
    if svc and svc["spec"].get("clusterIP") != "None":
        err(f"Service {spec.get('serviceName')}: not headless (clusterIP: None)")
    if spec["selector"]["matchLabels"].items() - spec["template"]["metadata"]["labels"].items():
        err("StatefulSet vigild: selector does not match its pods")
    ports = check_pod("StatefulSet vigild", spec["template"], cts)
    workloads.append((spec["template"]["metadata"]["labels"], ports))
cj = one("CronJob", "vigil-night")
if cj:
    js = cj["spec"]["jobTemplate"]["spec"]
    fields = cj["spec"].get("schedule", "").split()
    if len(fields) != 5:
        err(f"CronJob vigil-night: schedule {cj['spec'].get('schedule')!r} is not 5 fields")
    if js.get("completionMode") != "Indexed":
        err("CronJob vigil-night: the Job is not Indexed")
    if not js.get("completions") or js.get("completions") != js.get("parallelism"):
        err("CronJob vigil-night: completions != parallelism")
    if js["template"]["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
        err("CronJob vigil-night: restartPolicy must be Never or OnFailure")
    env = {e["name"]: e.get("value") for c in js["template"]["spec"]["containers"]
           for e in c.get("env", [])}
    if env.get("PARTS") != str(js.get("completions")):
        err(f"CronJob vigil-night: PARTS {env.get('PARTS')} != completions {js.get('completions')}")
    if env.get("OMP_WAIT_POLICY") != "passive":
        err("CronJob vigil-night: OMP_WAIT_POLICY is not passive (OpenMP threads would spin "
            "on the pod's CPU limit)")
    check_pod("CronJob vigil-night", js["template"])
    # its script refuses a PARTS out of 2-4096, or a completion index not
    # below it (completions edited without PARTS), before it touches a volume
    script = js["template"]["spec"]["containers"][0]["command"][-1]
    for parts, index in (("1", "0"), ("0", "0"), ("x", "0"), ("4097", "0"), ("012", "0"),
                         ("", "0"), ("3", "3")):
        r = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                           env=dict(os.environ, PARTS=parts, JOB_COMPLETION_INDEX=index,
                                    JOB="vigil-night-29000000", RULES="/nonexistent",
                                    MERGE_OPTS=""))
        if r.returncode != 2 or not r.stderr.startswith("vigil-night: "):
            err(f"CronJob vigil-night: PARTS={parts!r} index {index}: exit {r.returncode}, "
                f"want 2 with a line: {r.stderr.strip()!r}")
dep = one("Deployment", "vigil-console")
if dep:
    ports = check_pod("Deployment vigil-console", dep["spec"]["template"])
    workloads.append((dep["spec"]["template"]["metadata"]["labels"], ports))
for name, svc in by_kind.get("Service", {}).items():
    sel = svc["spec"].get("selector", {})
    match = [p for labels, p in workloads if sel.items() <= labels.items()]
    if not match:
        err(f"Service {name}: selects no workload's pods")
        continue
    for p in svc["spec"].get("ports", []):
        tp = p.get("targetPort")
        if isinstance(tp, str) and tp not in match[0]:
            err(f"Service {name}: targetPort {tp} is no port of its pods")

cm = one("ConfigMap", "vigild-config")
if cm:
    with tempfile.TemporaryDirectory() as tmp:
        ini = os.path.join(tmp, "vigild.ini")
        with open(ini, "w") as f:
            f.write(cm["data"]["vigild.ini"])
        r = subprocess.run([VIGILD, "--config", ini, "--data", tmp, "--rules", RULES,
                            "--replica", "vigild-0", "--check-config", "--quiet"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            err(f"ConfigMap vigild-config: vigild --check-config: exit {r.returncode}: "
                f"{r.stderr.strip()}")
        r = subprocess.run([VIGILD, "--config", ini, "--data", tmp, "--rules", RULES,
                            "--replica", "vigild-0", "--check-config"],
                           capture_output=True, text=True)
        if "ready_when_degraded true" not in r.stdout:
            err("ConfigMap vigild-config: [health] ready_when_degraded must be true: the "
                "clients route cards to replicas by name and an unready pod leaves the "
                "headless Service's DNS (docs/security.md, \"Readiness\")")

if errors:
    for e in errors:
        print("test_k8s: " + e, file=sys.stderr)
    sys.exit(1)
print(f"test_k8s: {len(docs)} documents of {len(listed)} files: OK")
